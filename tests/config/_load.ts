/**
 * Test helpers: parse fixture files and inline XML.
 * @module
 */

import { type ConfigReport, parseConfigText } from "../../src/config/mod.ts";

/** The text of a file under tests/fixtures/. */
export function fixtureText(name: string): string {
  return Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));
}

/** Parses a fixture as if read from its path. */
export function parseFixture(name: string): ConfigReport {
  return parseConfigText(fixtureText(name), name);
}

/** Parses inline XML, named "a.conf" in messages. */
export function parseInline(xml: string): ConfigReport {
  return parseConfigText(xml, "a.conf");
}

/** The error messages of a report, as `line: message`. */
export function errorsOf(report: ConfigReport): string[] {
  return report.problems.filter((p) => p.severity === "error").map((p) =>
    `${p.line}: ${p.message}`
  );
}

/** The warning messages of a report, as `line: message`. */
export function warningsOf(report: ConfigReport): string[] {
  return report.problems.filter((p) => p.severity === "warning").map((p) =>
    `${p.line}: ${p.message}`
  );
}
