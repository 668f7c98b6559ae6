/**
 * `check system`'s audit of sshd_config (Aspera Proxy's "Securing Your SSH
 * Server"): a table of named checks over the parsed file with every Include
 * spliced in, and the proxy users its ForceCommand block covers.
 * @module
 */

import type { Config } from "../config/mod.ts";
import { type Finding, finding } from "./findings.ts";
import { type CheckHost, includeTexts } from "./host.ts";
import {
  effectiveValue,
  globalValues,
  parseSshdConfig,
  type ProxyBlock,
  proxyBlocks,
  type SshdDirective,
} from "./sshd_config.ts";

/** sshd_config with every Include spliced in. */
export async function loadSshd(
  host: CheckHost,
  path: string,
): Promise<SshdDirective[] | undefined> {
  const text = await host.readText(path);
  if (text === undefined) return undefined;
  const included = new Map<string, string[]>();
  const collect = async (body: string, depth: number) => {
    for (const m of body.matchAll(/^\s*include\s+(.+)$/gim)) {
      for (const pattern of (m[1] as string).replace(/#.*/, "").trim().split(/\s+/)) {
        if (included.has(pattern) || depth > 8) continue;
        const texts = await includeTexts(host, pattern);
        included.set(pattern, texts);
        for (const t of texts) await collect(t, depth + 1);
      }
    }
  };
  await collect(text, 0);
  return parseSshdConfig(text, (pattern) => included.get(pattern) ?? []);
}

/** The members of the groups and users an sshd block covers, from /etc/group and /etc/passwd. */
export async function proxyUsers(
  host: CheckHost,
  blocks: readonly ProxyBlock[],
): Promise<string[]> {
  const groups = new Set(blocks.flatMap((b) => b.groups));
  const users = new Set(blocks.flatMap((b) => b.users));
  const groupText = (await host.readText("/etc/group")) ?? "";
  const gids = new Set<string>();
  for (const line of groupText.split("\n")) {
    const [name, , gid, members = ""] = line.split(":");
    if (name && groups.has(name)) {
      if (gid) gids.add(gid);
      members.split(",").filter(Boolean).forEach((m) => users.add(m));
    }
  }
  for (const line of ((await host.readText("/etc/passwd")) ?? "").split("\n")) {
    const [name, , , gid] = line.split(":");
    if (name && gid && gids.has(gid)) users.add(name);
  }
  return [...users].sort();
}

/** What an sshd check looks at. */
export interface SshdView {
  readonly sshd: readonly SshdDirective[];
  /** The first Match block that forces `xferproxy reverse`, when there is one. */
  readonly block?: ProxyBlock;
  readonly config?: Config;
}

/** One named sshd_config check: the finding ids it may report, and the check. */
export interface SshdCheck {
  readonly name: string;
  readonly ids: readonly string[];
  /** Only where a ForceCommand block exists (the proxy users' settings). */
  readonly inBlock?: true;
  run(view: SshdView): Finding[];
}

/** Names xferproxy or its launcher could read, and one for any future variable. */
const OWN_VARIABLES = ["XFERPROXY_CONFIG", "XFERPROXY_BIN", "XFERPROXY_PROXY_PASS", "XFERPROXY_X"];

/** True when an AcceptEnv pattern (`*` and `?` wildcards) covers an xferproxy variable besides XFERPROXY_HOST. */
export function acceptsMoreThanHost(pattern: string): boolean {
  const glob = new RegExp(
    "^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") +
      "$",
  );
  return OWN_VARIABLES.some((name) => glob.test(name));
}

/** The AcceptEnv patterns that apply to the proxy users' block. */
function acceptEnv({ sshd, block }: SshdView): string[] {
  return sshd.filter((d) =>
    d.keyword === "acceptenv" && (d.match === undefined || d.match === block?.match)
  ).flatMap((d) => d.args);
}

/** The checks, in the order they print. */
export const SSHD_CHECKS: readonly SshdCheck[] = [
  {
    name: "port",
    ids: ["sshd.port"],
    run: ({ sshd }) => {
      const ports = globalValues(sshd, "port");
      return ports.length === 0 || ports.includes("22")
        ? [finding.warning(
          "sshd.port",
          "sshd listens on port 22, the one every scanner tries",
          "Port 33001 in sshd_config (Aspera Proxy's recommendation); keep 22 only while clients migrate",
        )]
        : [];
    },
  },
  {
    name: "password_auth",
    ids: ["sshd.password_auth"],
    run: ({ sshd }) =>
      effectiveValue(sshd, undefined, "passwordauthentication") !== "no"
        ? [finding.warning(
          "sshd.password_auth",
          "password authentication is on",
          "PasswordAuthentication no (keys only)",
        )]
        : [],
  },
  {
    name: "root_login",
    ids: ["sshd.root_login"],
    run: ({ sshd }) =>
      effectiveValue(sshd, undefined, "permitrootlogin") !== "no"
        ? [finding.warning("sshd.root_login", "root may log in over SSH", "PermitRootLogin no")]
        : [],
  },
  {
    name: "force_command",
    ids: ["sshd.force_command"],
    run: ({ block }) => [
      block
        ? finding.info("sshd.force_command", `"Match ${block.match}" forces xferproxy reverse`)
        : finding.error(
          "sshd.force_command",
          'no Match block runs "ForceCommand xferproxy reverse": proxy users would get a shell',
          "add the Match Group block from docs/reverse.md",
        ),
    ],
  },
  {
    name: "forwarding",
    ids: ["sshd.forwarding"],
    inBlock: true,
    run: ({ sshd, block }) =>
      effectiveValue(sshd, block, "disableforwarding") === "yes" ||
        effectiveValue(sshd, block, "allowtcpforwarding") === "no"
        ? []
        : [finding.error(
          "sshd.forwarding",
          `proxy users (Match ${block?.match}) may forward ports, bypassing the proxy`,
          "DisableForwarding yes in the Match block",
        )],
  },
  {
    name: "accept_env",
    ids: ["sshd.accept_env"],
    inBlock: true,
    run: (view) => {
      const usesDomain = view.config?.server.rproxy.rules.some((r) => r.hostDomain) ?? false;
      const accepted = acceptEnv(view);
      return usesDomain &&
          !accepted.some((e) => e === "XFERPROXY_HOST" || e === "XFERPROXY_*" || e === "*")
        ? [finding.error(
          "sshd.accept_env",
          "a rule uses host_domain but sshd does not accept XFERPROXY_HOST",
          "AcceptEnv XFERPROXY_HOST in the Match block",
        )]
        : [];
    },
  },
  {
    name: "accept_env_broad",
    ids: ["sshd.accept_env_broad"],
    inBlock: true,
    run: (view) => {
      const broad = acceptEnv(view).filter(acceptsMoreThanHost);
      return broad.length > 0
        ? [finding.warning(
          "sshd.accept_env_broad",
          `sshd lets proxy clients set xferproxy variables other than XFERPROXY_HOST (AcceptEnv ${
            broad.join(" ")
          })`,
          "accept only XFERPROXY_HOST",
        )]
        : [];
    },
  },
];

/** Runs the sshd checks on `path`: an error when it cannot be read. */
export async function checkSshd(
  host: CheckHost,
  path: string,
  config: Config | undefined,
): Promise<Finding[]> {
  const sshd = await loadSshd(host, path);
  if (!sshd) {
    return [
      finding.error(
        "sshd.config",
        `cannot read ${path}`,
        "install openssh-server, or pass --sshd-config PATH",
      ),
    ];
  }
  const block = proxyBlocks(sshd)[0];
  const view: SshdView = {
    sshd,
    ...(block ? { block } : {}),
    ...(config ? { config } : {}),
  };
  return SSHD_CHECKS.filter((c) => block || !c.inBlock).flatMap((c) => c.run(view));
}
