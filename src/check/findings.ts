/**
 * Findings of the audit: what, how bad, and how to fix it.
 * @module
 */

/** One finding. */
export interface Finding {
  /** Stable id, e.g. "sshd.force_command". */
  readonly id: string;
  readonly severity: "error" | "warning" | "info";
  readonly message: string;
  /** What to do about it (empty for info). */
  readonly fix: string;
}

/** Builds findings with less noise. */
export const finding = {
  error: (id: string, message: string, fix: string): Finding => ({
    id,
    severity: "error",
    message,
    fix,
  }),
  warning: (id: string, message: string, fix: string): Finding => ({
    id,
    severity: "warning",
    message,
    fix,
  }),
  info: (id: string, message: string): Finding => ({ id, severity: "info", message, fix: "" }),
};

/** One line per finding, e.g. `ERROR sshd.force_command: … (fix: …)`. */
export function formatFindings(findings: readonly Finding[]): string {
  return findings.map((f) =>
    `${
      f.severity === "error" ? "ERROR" : f.severity === "warning" ? "WARN " : "OK   "
    } ${f.id}: ${f.message}${f.fix ? ` (fix: ${f.fix})` : ""}\n`
  ).join("");
}

/** `2 errors, 1 warning`. */
export function summary(findings: readonly Finding[]): string {
  const count = (s: Finding["severity"]) => findings.filter((f) => f.severity === s).length;
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? "" : "s"}`;
  return `${plural(count("error"), "error")}, ${plural(count("warning"), "warning")}`;
}
