/**
 * `xferproxy check config` (Aspera Proxy's `asuserdata -v`) and
 * `xferproxy check defaults` (`asuserdata -s`).
 * @module
 */

import { formatOptionSpec, formatProblem, readConfigReport } from "../config/mod.ts";
import type { Config } from "../config/mod.ts";
import type { Fs } from "../config/fs.ts";
import type { Output } from "../cli/output.ts";

/**
 * Validates the config file; prints OK or every problem (with its fix where the problem names
 * one). Returns the exit status.
 */
export async function checkConfig(path: string, fs: Fs, output: Output): Promise<number> {
  const report = await readConfigReport(path, fs);
  if (report.fatal) {
    output.out(`Cannot load config "${path}": ${report.fatal}\n`);
    return 1;
  }
  for (const problem of report.problems) {
    output.out(`${formatProblem(path, problem)}${problem.fix ? ` (fix: ${problem.fix})` : ""}\n`);
  }
  const errors = report.problems.filter((p) => p.severity === "error").length;
  const warnings = report.problems.length - errors;
  if (!report.config) {
    output.out(
      `FAILED: "${path}" has ${plural(errors, "error")} and ${plural(warnings, "warning")}\n`,
    );
    return 1;
  }
  output.out(
    `OK: "${path}" is valid (${summarize(report.config)}${
      warnings ? `; ${plural(warnings, "warning")}` : ""
    })\n`,
  );
  return 0;
}

/** Prints the option spec with defaults. */
export function checkDefaults(version: string, output: Output): number {
  output.out(formatOptionSpec(version));
  return 0;
}

function summarize(config: Config): string {
  const { proxy, rproxy } = config.server;
  const reverse = rproxy.enabled
    ? `reverse proxy on, ${plural(rproxy.rules.length, "rule")}`
    : "reverse proxy off";
  const forward = proxy.enabled
    ? `forward proxy on, ports ${proxy.portRangeLow}-${proxy.portRangeHigh}`
    : "forward proxy off";
  return `${reverse}; ${forward}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
