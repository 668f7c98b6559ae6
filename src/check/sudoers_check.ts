/**
 * `check system`'s sudoers findings: the sessions' privileged call
 * (`sudo <executable> dnat …`) must be allowed for the proxy group by a rule
 * sudo actually reads, and nothing may hand out raw netfilter or refuse
 * tty-less calls.
 * @module
 */

import { type Finding, finding } from "./findings.ts";
import type { CheckHost } from "./host.ts";
import { proxyBlocks, type SshdDirective } from "./sshd_config.ts";
import { analyzeSudoers, missReason, type WantedDnatRule } from "./sudoers.ts";
import { loadSudoers } from "./sudoers_files.ts";

/** The group the packages create for proxy users, when sshd names none. */
export const DEFAULT_PROXY_GROUP = "xferproxy";

/** The groups each user is in, from /etc/group members and /etc/passwd primary groups. */
async function groupsOf(host: CheckHost, users: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map(users.map((u) => [u, [] as string[]]));
  const byGid = new Map<string, string>();
  for (const line of ((await host.readText("/etc/group")) ?? "").split("\n")) {
    const [name, , gid, members = ""] = line.split(":");
    if (!name) continue;
    if (gid) byGid.set(gid, name);
    for (const m of members.split(",")) out.get(m)?.push(name);
  }
  for (const line of ((await host.readText("/etc/passwd")) ?? "").split("\n")) {
    const [name = "", , , gid = ""] = line.split(":");
    const group = byGid.get(gid);
    if (group) out.get(name)?.push(group);
  }
  return out;
}

/**
 * What the sessions need: the executable sshd's ForceCommand runs (else this one),
 * for the groups and users of the ForceCommand blocks (else group xferproxy).
 */
export async function wantedDnatRule(
  host: CheckHost,
  sshd: readonly SshdDirective[],
  executable: string,
): Promise<WantedDnatRule> {
  const blocks = proxyBlocks(sshd);
  const forced = blocks.flatMap((b) => b.directives).find((d) => d.keyword === "forcecommand")
    ?.args[0];
  const groups = [...new Set(blocks.flatMap((b) => b.groups))];
  const users = [...new Set(blocks.flatMap((b) => b.users))];
  return {
    executable: forced?.startsWith("/") ? forced : executable,
    groups: groups.length || users.length ? groups : [DEFAULT_PROXY_GROUP],
    users: await groupsOf(host, users),
  };
}

/** The sudoers findings. `executable`: this xferproxy's path, when sshd names none. */
export async function checkSudoers(
  host: CheckHost,
  sshd: readonly SshdDirective[],
  executable: string,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const wanted = await wantedDnatRule(host, sshd, executable);
  const sources = await loadSudoers(host);
  const facts = analyzeSudoers(sources.statements, wanted);
  const helper = `${wanted.executable} dnat *`;
  for (const [principal, grant] of facts.dnat) {
    if (grant) {
      out.push(finding.info(
        "sudoers.dnat",
        `sudoers lets ${principal} run "${helper}" as root without a password (${grant.file}: ${grant.line})`,
      ));
      continue;
    }
    const who = principal.startsWith("%")
      ? [principal]
      : [principal, ...(wanted.users?.get(principal) ?? []).map((g) => `%${g}`)];
    const miss = facts.nearMisses.at(-1);
    out.push(finding.error(
      "sudoers.dnat",
      `no sudoers rule that sudo reads lets ${principal} run "${helper}" as root without a password: sessions get no UDP forwarding${
        miss
          ? `; "${miss.line}" (${miss.file}) does not count: ${
            missReason(miss, who, wanted.executable)
          }`
          : ""
      }`,
      `add "${principal} ALL=(root) NOPASSWD: ${helper}" with visudo -f /etc/sudoers.d/xferproxy`,
    ));
  }
  for (const skipped of sources.skipped.filter((s) => /xferproxy/.test(s.text))) {
    out.push(finding.warning(
      "sudoers.skipped",
      `sudo does not read ${skipped.path}: it skips names with a dot or ending in "~" in an included directory`,
      `check it with visudo -cf ${skipped.path}, then move it to a name without a dot (the packages set a drop-in that fails visudo aside as .invalid)`,
    ));
  }
  if (facts.requiretty.on.length && !facts.requiretty.off.length) {
    out.push(finding.error(
      "sudoers.requiretty",
      `sudoers says "${
        facts.requiretty.on[0]
      }": sessions call sudo without a tty (scp, sftp, ascp), so they get no UDP forwarding`,
      `add "Defaults:%${
        wanted.groups[0] ?? DEFAULT_PROXY_GROUP
      } !requiretty" with visudo -f /etc/sudoers.d/xferproxy`,
    ));
  }
  for (const line of new Set(facts.rawEntries.map((g) => g.line))) {
    out.push(finding.error(
      "sudoers.raw_netfilter",
      `sudoers gives root's firewall away: "${line}" (its stdin or arguments can be any rules)`,
      'remove it; sessions only need the "xferproxy dnat *" entry',
    ));
  }
  return out;
}
