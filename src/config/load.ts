/**
 * Reading a config file: text → XML tree → validated `Config`, with every
 * problem formatted to name the file, line, column and tag.
 * @module
 */

import { UserError } from "../errors.ts";
import type { Fs } from "./fs.ts";
import { InvalidUtf8Error } from "./text.ts";
import { parseXml, XmlSyntaxError } from "./raw.ts";
import { findPdfCharacters } from "./typography.ts";
import type { Config, Problem } from "./types.ts";
import { validateConfig } from "./validate.ts";

/** Everything known about one config file. */
export interface ConfigReport {
  readonly path: string;
  /** Present when the file was read and has no errors. */
  readonly config?: Config;
  /** Validation findings, in file order. */
  readonly problems: readonly Problem[];
  /** Why the file could not be read or parsed at all. */
  readonly fatal?: string;
}

/** A config that cannot be used; the message names the file and the first error. */
export class ConfigError extends UserError {
  readonly report: ConfigReport;
  constructor(report: ConfigReport) {
    const first = report.fatal ?? report.problems.find((p) => p.severity === "error");
    const detail = typeof first === "string"
      ? first
      : first
      ? formatPosition(first)
      : "unknown error";
    super(`Cannot load config "${report.path}": ${detail}`);
    this.report = report;
  }
}

/**
 * Parses config text; never throws for bad content. Ligatures and curly quotes
 * of a PDF copy are errors found first, every one of them, since they would
 * break the XML or rename a tag.
 */
export function parseConfigText(text: string, path: string): ConfigReport {
  const pasted = findPdfCharacters(text);
  if (pasted.length > 0) {
    return { path, problems: pasted.map((p) => ({ severity: "error" as const, ...p })) };
  }
  let root;
  try {
    root = parseXml(text);
  } catch (error) {
    if (!(error instanceof XmlSyntaxError)) throw error;
    return {
      path,
      problems: [],
      fatal: `line ${error.line}, column ${error.column}: malformed XML: ${error.message}`,
    };
  }
  const { config, problems } = validateConfig(root, path);
  return config ? { path, config, problems } : { path, problems };
}

/** Reads and validates a config file; never throws for a missing, unreadable or bad file. */
export async function readConfigReport(path: string, fs: Fs): Promise<ConfigReport> {
  let text: string;
  try {
    text = await fs.readTextFile(path);
  } catch (error) {
    return { path, problems: [], fatal: describeReadError(error) };
  }
  return parseConfigText(text, path);
}

/**
 * Reads a config file that a mode is about to use.
 * @throws {ConfigError} when it cannot be read or has any error
 */
export async function loadConfig(
  path: string,
  fs: Fs,
): Promise<{ config: Config; warnings: Problem[] }> {
  const report = await readConfigReport(path, fs);
  if (!report.config) throw new ConfigError(report);
  return {
    config: report.config,
    warnings: report.problems.filter((p) => p.severity === "warning"),
  };
}

/** `line 12, column 5: <proxy_port> must be …` */
export function formatPosition(problem: Problem): string {
  return `line ${problem.line}, column ${problem.column}: ${problem.message}`;
}

/** One line per problem, e.g. `Cannot load config "a.conf": line 12, column 5: …`. */
export function formatProblem(path: string, problem: Problem): string {
  const lead = problem.severity === "error" ? "Cannot load config" : "Warning: config";
  return `${lead} "${path}": ${formatPosition(problem)}`;
}

function describeReadError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) {
    return "file not found (create it, or pass --config PATH or set XFERPROXY_CONFIG)";
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return "permission denied (check the file's owner and mode)";
  }
  if (error instanceof Deno.errors.IsADirectory) return "is a directory, not a file";
  if (error instanceof Deno.errors.NotCapable) return "reading it is not permitted in this mode";
  if (error instanceof InvalidUtf8Error) {
    return `line ${error.line}, column ${error.column}: ${error.message}; save the file as UTF-8`;
  }
  return error instanceof Error ? error.message : String(error);
}
