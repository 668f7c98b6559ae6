/**
 * What forward mode needs of the host beyond netfilter: openssl, when HTTPS
 * is on without a configured certificate (the daemon makes a self-signed one).
 * @module
 */

import type { Config } from "../config/mod.ts";
import { installHint } from "../process/packages.ts";
import { type Finding, finding } from "./findings.ts";
import type { CheckHost } from "./host.ts";

const OPENSSL_PATHS = ["/usr/bin/openssl", "/bin/openssl", "/usr/local/bin/openssl"];

/** `forward.openssl`: an error when the generated certificate cannot be made. */
export async function checkOpenssl(
  host: CheckHost,
  config: Config | undefined,
): Promise<Finding[]> {
  const proxy = config?.server.proxy;
  if (!proxy?.enabled || !config?.server.enableHttps || (proxy.certFile && proxy.keyFile)) {
    return [];
  }
  const found = (await Promise.all(OPENSSL_PATHS.map((p) => host.stat(p)))).some(Boolean);
  return found ? [] : [
    finding.error(
      "forward.openssl",
      "forward HTTPS has no <cert_file> and <key_file>, and openssl is not installed: the daemon cannot make its self-signed certificate and will not start",
      `${installHint("openssl")}, or set <cert_file> and <key_file> in <proxy>`,
    ),
  ];
}
