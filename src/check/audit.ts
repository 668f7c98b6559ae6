/**
 * The audits of `xferproxy check [config|system|users|upstreams]`: runs them, prints text or
 * JSON findings, and maps them to an exit status (1 when any is an error).
 * @module
 */

import { type Config, type ConfigReport, formatProblem, parseConfigText } from "../config/mod.ts";
import type { Output } from "../cli/output.ts";
import { type Finding, finding, formatFindings, summary } from "./findings.ts";
import type { CheckHost } from "./host.ts";
import { checkSystem } from "./system.ts";
import { auditUsers, formatUserReport, userFindings } from "./users.ts";

/** What to audit and how to print it. */
export interface CheckOptions {
  readonly topic: "all" | "config" | "system" | "users" | "upstreams";
  /** Paths as seen inside the audited system. */
  readonly configPath: string;
  readonly sshdConfigPath: string;
  /** This xferproxy's path (sudoers must let the proxy group run it). */
  readonly executable: string;
  readonly json: boolean;
  /** The audit's clock; the real one when not given. */
  readonly now?: number;
  /** `check upstreams`: logs in to the internal servers (only that topic has network access). */
  readonly upstreams?: (config: Config) => Promise<Finding[]>;
}

/** The config as findings. */
export function configFindings(report: ConfigReport): Finding[] {
  if (report.fatal) {
    return [
      finding.error(
        "config.load",
        `cannot load ${report.path}: ${report.fatal}`,
        "fix the file; xferproxy check config lists every problem",
      ),
    ];
  }
  const out = report.problems.map((p) =>
    p.severity === "error"
      ? finding.error(
        `config.${p.tag}`,
        formatProblem(report.path, p),
        "correct the value; docs/configuration.md lists every option",
      )
      : finding.warning(
        `config.${p.tag}`,
        formatProblem(report.path, p),
        p.fix ?? "remove or move the tag",
      )
  );
  if (report.config) out.push(finding.info("config.valid", `${report.path} is valid`));
  return out;
}

/** Runs the audit; returns the exit status. */
export async function runCheck(
  host: CheckHost,
  options: CheckOptions,
  output: Output,
): Promise<number> {
  const text = await host.readText(options.configPath);
  const report: ConfigReport = text === undefined
    ? { path: options.configPath, problems: [], fatal: "file not found or unreadable" }
    : parseConfigText(text, options.configPath);
  const findings: Finding[] = [];
  const sections: string[] = [];
  if (options.topic === "all" || options.topic === "config") {
    findings.push(...configFindings(report));
  }
  if (options.topic === "all" || options.topic === "system") {
    findings.push(
      ...await checkSystem(host, {
        ...(report.config ? { config: report.config } : {}),
        sshdConfigPath: options.sshdConfigPath,
        executable: options.executable,
        now: options.now ?? Date.now(),
      }),
    );
  }
  if (options.topic === "upstreams") {
    findings.push(...configFindings(report).filter((f) => f.severity === "error"));
    if (report.config && options.upstreams) {
      findings.push(...await options.upstreams(report.config));
    }
  }
  if (options.topic === "all" || options.topic === "users") {
    const users = await auditUsers(host, options.sshdConfigPath, report.config);
    findings.push(...userFindings(users));
    sections.push(formatUserReport(users));
  }
  const failed = findings.some((f) => f.severity === "error");
  if (options.json) {
    output.out(JSON.stringify({ ok: !failed, findings }, null, 2) + "\n");
  } else {
    output.out(formatFindings(findings));
    for (const section of sections) output.out(section);
    output.out(`${failed ? "FAILED" : "OK"}: ${summary(findings)}\n`);
  }
  return failed ? 1 : 0;
}
