/**
 * `xferproxy check users` (Aspera Proxy's asp-check, for our model): who has
 * full SSH access, who is a proxy user, and which proxy users are insecure.
 * @module
 */

import type { Config } from "../config/mod.ts";
import { expandKeyfile } from "../config/mod.ts";
import { type Finding, finding } from "./findings.ts";
import type { CheckHost } from "./host.ts";
import { authorizedKeysPaths, effectiveValue, proxyBlocks } from "./sshd_config.ts";
import { loadSshd, proxyUsers } from "./sshd.ts";

/** The counts Aspera Proxy's asp-check prints, plus the reasons. */
export interface UserReport {
  readonly fullAccess: string[];
  readonly proxyUsers: string[];
  readonly insecure: Map<string, string[]>;
  readonly reasons: Record<
    | "not covered by ForceCommand"
    | "forwarding allowed"
    | "writable authorized_keys"
    | "keyfile readable by others",
    number
  >;
}

const NO_LOGIN = /(nologin|false|sync|shutdown|halt)$/;

/** Audits the accounts. */
export async function auditUsers(
  host: CheckHost,
  sshdConfigPath: string,
  config?: Config,
): Promise<UserReport> {
  const sshd = (await loadSshd(host, sshdConfigPath)) ?? [];
  const blocks = proxyBlocks(sshd);
  const block = blocks[0];
  const covered = new Set(await proxyUsers(host, blocks));
  const members = new Set(covered);
  // Proxy users are the members of the ForceCommand block, and members of a group named like one.
  const groupText = (await host.readText("/etc/group")) ?? "";
  const xferGroup = groupText.split("\n").find((l) => l.startsWith("xferproxy:"));
  for (const m of (xferGroup?.split(":")[3] ?? "").split(",").filter(Boolean)) members.add(m);
  const accounts = ((await host.readText("/etc/passwd")) ?? "").split("\n").map((l) => l.split(":"))
    .filter((f) => f.length >= 7);
  const report: UserReport = {
    fullAccess: [],
    proxyUsers: [],
    insecure: new Map(),
    reasons: {
      "not covered by ForceCommand": 0,
      "forwarding allowed": 0,
      "writable authorized_keys": 0,
      "keyfile readable by others": 0,
    },
  };
  const forwardingOff = block !== undefined &&
    (effectiveValue(sshd, block, "disableforwarding") === "yes" ||
      effectiveValue(sshd, block, "allowtcpforwarding") === "no");
  for (const [name = "", , uidText = "", , , home = "", shell = ""] of accounts) {
    const uid = Number(uidText);
    const isProxy = members.has(name);
    if (!isProxy) {
      if ((uid === 0 || uid >= 1000) && !NO_LOGIN.test(shell) && uid !== 65534) {
        report.fullAccess.push(name);
      }
      continue;
    }
    report.proxyUsers.push(name);
    const why: string[] = [];
    if (!covered.has(name)) why.push("not covered by ForceCommand");
    else if (!forwardingOff) why.push("forwarding allowed");
    const keysPath = authorizedKeysPaths(sshd, name, home)[0];
    const keysInfo = keysPath === undefined ? undefined : await host.stat(keysPath);
    if (keysInfo && (keysInfo.mode & 0o022) !== 0) why.push("writable authorized_keys");
    for (const rule of config?.server.rproxy.rules ?? []) {
      if (!rule.keyfile?.includes("$(user)")) continue;
      const info = await host.stat(expandKeyfile(rule.keyfile, name));
      if (info && (info.mode & 0o044) !== 0) {
        why.push("keyfile readable by others");
        break;
      }
    }
    if (why.length) {
      report.insecure.set(name, why);
      for (const w of why) report.reasons[w as keyof UserReport["reasons"]]++;
    }
  }
  return report;
}

/** Aspera Proxy's asp-check summary lines. */
export function formatUserReport(report: UserReport): string {
  const lines = [
    `Users with full access: ${report.fullAccess.length} (not considered insecure)`,
    `Proxy users: ${report.proxyUsers.length}`,
    `Insecure users: ${report.insecure.size}`,
    ...Object.entries(report.reasons).map(([reason, n]) => ` - ${reason}: ${n}`),
  ];
  return lines.join("\n") + "\n";
}

/** Findings for the combined report. */
export function userFindings(report: UserReport): Finding[] {
  const out: Finding[] = [
    finding.info(
      "users.full_access",
      `${report.fullAccess.length} user(s) with full SSH access: ${
        report.fullAccess.join(", ") || "none"
      }`,
    ),
    finding.info(
      "users.proxy",
      `${report.proxyUsers.length} proxy user(s): ${report.proxyUsers.join(", ") || "none"}`,
    ),
  ];
  const fixes: Record<string, string> = {
    "not covered by ForceCommand":
      "put the user in the Match Group block that forces xferproxy reverse",
    "forwarding allowed": "DisableForwarding yes in the Match block",
    "writable authorized_keys": "chmod 600 ~/.ssh/authorized_keys and chown it to the user",
    "keyfile readable by others": "chmod 600 the user's upstream keyfile",
  };
  for (const [user, why] of report.insecure) {
    for (const reason of why) {
      out.push(
        finding.error(
          `users.${reason.replaceAll(" ", "_")}`,
          `proxy user ${user}: ${reason}`,
          fixes[reason] ?? "",
        ),
      );
    }
  }
  return out;
}
