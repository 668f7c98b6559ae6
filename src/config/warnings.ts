/**
 * Warnings about settings that load but cannot work as written: a rule an
 * earlier one always wins over, and a proxy port a real ascp never uses.
 * @module
 */

import type { RawElement } from "./raw.ts";
import type { Problems, SectionReader } from "./reader.ts";
import type { ReverseRule } from "./types.ts";

/**
 * A real ascp sends UDP to the port the internal server announces through
 * the SSH channel, which xferproxy passes on unchanged: a proxy port other
 * than the server's own is never used by such a client.
 */
export function warnRealAscp(
  reader: SectionReader,
  element: RawElement,
  name: string,
  ports: { proxyPort: number; udpPort: number; span: number },
  problems: Problems,
): void {
  const { proxyPort, udpPort, span } = ports;
  if (proxyPort === 0 || proxyPort === udpPort) return;
  problems.warn(
    reader.child("proxy_port") ?? element,
    "proxy_port",
    `${name}: <proxy_port> ${proxyPort} differs from the internal server's <udp_port> ${udpPort}; a real ascp sends UDP to the port the server announces (${udpPort}${
      span > 1 ? `-${udpPort + span - 1}` : ""
    }), so set <proxy_port>0</proxy_port> unless clients are told the proxy port some other way`,
  );
}

/** Warns about rules an earlier rule always matches first. */
export function warnShadowedRules(
  rules: ReverseRule[],
  elements: RawElement[],
  problems: Problems,
): void {
  const key = (r: ReverseRule) =>
    `${r.hostIp?.text ?? ""}|${r.hostDomain?.name ?? ""}:${r.hostDomain?.port ?? ""}`;
  rules.forEach((rule, i) => {
    const earlier = rules.slice(0, i).find((r) => key(r) === "|:" || key(r) === key(rule));
    if (earlier) {
      problems.warn(
        elements[i] as RawElement,
        "rule",
        `<rule> ${rule.index} can never match: <rule> ${earlier.index} (line ${earlier.line}) matches first`,
      );
    }
  });
}
