/**
 * The keys a proxy depends on: each rule's keyfile (present, private
 * enough, usable by ssh in batch mode, not DSA) and the keys partners log
 * in with (sshd refuses DSA since OpenSSH 7.0, and old Faspex set-ups used
 * `aspera_id_dsa`).
 * @module
 */

import { expandKeyfile, type ReverseConfig } from "../config/mod.ts";
import { classifyPrivateKey } from "../ssh/private_key.ts";
import { type Finding, finding } from "./findings.ts";
import { type CheckHost, modeText } from "./host.ts";
import { authorizedKeysPaths, type SshdDirective } from "./sshd_config.ts";

/** Findings about every rule's keyfile, `$(user)` expanded for each proxy user. */
export async function checkKeyfiles(
  host: CheckHost,
  rproxy: ReverseConfig,
  users: readonly string[],
): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const rule of rproxy.rules) {
    if (!rule.keyfile) continue;
    const paths = rule.keyfile.includes("$(user)")
      ? users.map((u) => expandKeyfile(rule.keyfile as string, u))
      : [rule.keyfile];
    for (const path of paths) {
      const info = await host.stat(path);
      if (!info) {
        out.push(
          finding.error(
            "keyfile.missing",
            `keyfile ${path} (rule ${rule.index}) does not exist`,
            `ssh-keygen -t ed25519 -N '' -f ${path}`,
          ),
        );
        continue;
      }
      if ((info.mode & 0o007) !== 0 || (info.mode & 0o020) !== 0) {
        out.push(
          finding.error(
            "keyfile.mode",
            `keyfile ${path} is readable or writable by others (mode ${modeText(info.mode)})`,
            `chmod 600 ${path} (640 with the proxy group for a squash key)`,
          ),
        );
      }
      const text = await host.readText(path);
      const verdict = text === undefined ? undefined : classifyPrivateKey(text, path);
      if (verdict && !verdict.ok) {
        out.push(
          finding.error(
            "keyfile.unusable",
            `${verdict.message} (rule ${rule.index})`,
            `ssh-keygen -t ed25519 -N '' -f ${path}, then authorize ${path}.pub on the internal server`,
          ),
        );
      }
    }
  }
  return out;
}

/** A warning naming the proxy users whose authorized_keys hold DSA keys, which sshd refuses. */
export async function checkAuthorizedKeys(
  host: CheckHost,
  sshd: readonly SshdDirective[],
  users: readonly string[],
): Promise<Finding[]> {
  const homes = new Map(
    ((await host.readText("/etc/passwd")) ?? "").split("\n").map((l) => l.split(":"))
      .filter((f) => f.length >= 7).map((f) => [f[0] as string, f[5] as string]),
  );
  const withDsa: string[] = [];
  for (const user of users) {
    const home = homes.get(user);
    if (home === undefined) continue;
    for (const path of authorizedKeysPaths(sshd, user, home)) {
      if (/(^|\s)ssh-dss\s+AAAA/m.test((await host.readText(path)) ?? "")) {
        withDsa.push(`${user} (${path})`);
        break;
      }
    }
  }
  if (withDsa.length === 0) return [];
  return [
    finding.warning(
      "sshd.dsa_keys",
      `proxy users with DSA keys, which sshd refuses since OpenSSH 7.0: ${withDsa.join(", ")}`,
      "have each partner make an ed25519 key (ssh-keygen -t ed25519) and replace the ssh-dss line",
    ),
  ];
}
