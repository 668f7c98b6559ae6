/**
 * Logging set-up on @logtape/logtape. Sinks: syslog (ident `xferproxy`),
 * a file in `<log_directory>`, and stderr. Reverse mode never gets the
 * stderr sink: its stderr belongs to the SSH client.
 * @module
 */

import {
  configure,
  getLogger,
  type Logger,
  type LogLevel,
  type LogRecord,
  reset,
  type Sink,
} from "@logtape/logtape";
import { formatRecord, levelFor, SYSLOG_SEVERITY } from "./format.ts";
import { SERVICE_START_FAILED, ServiceStartError } from "../errors.ts";

/** A log file that could not be used, and where its lines go instead. */
export interface RefusedLogFile {
  readonly path: string;
  readonly reason: string;
  /** `syslog` or `stderr`. */
  readonly instead: string;
}

/** Where log lines go; implemented in src/platform/log_outputs.ts and by test fakes. */
export interface LogOutputs {
  /** Appends one line to the file in `<log_directory>` (log/files.ts says which). */
  appendFile?(line: string): void;
  /** Sends one line to syslog with a severity 0-7. */
  syslog?(severity: number, line: string): void;
  /** Writes one line to stderr. */
  stderr?(line: string): void;
  /** ISO time for file lines. */
  now(): Date;
  /** Our process id, for file lines. */
  pid: number;
  /** The file `<log_directory>` asked for, when it was refused: said once, where lines go now. */
  refusedFile?: RefusedLogFile;
}

/** Outputs a process opened and must release (platform/log_outputs.ts). */
export interface ClosableLogOutputs extends LogOutputs {
  /** Flushes and releases them. */
  close(): Promise<void>;
}

/** Opens the outputs: the file in `directory` when given, else syslog (and stderr where the mode says). */
export type OpenLogs = (directory: string | undefined) => ClosableLogOutputs;

/** The config's say in logging (`<rproxy>`'s log_level and log_directory). */
export interface LogConfig {
  readonly logLevel: 0 | 1 | 2;
  readonly logDirectory?: string;
}

/** How verbose to be. */
export interface LogSettings {
  logLevel: 0 | 1 | 2;
}

/** Which outputs a process writes its lines to. */
export interface OutputChoice {
  readonly file: boolean;
  readonly syslog: boolean;
  readonly stderr: boolean;
}

/**
 * Where lines go. Sessions and one-off calls: the file in `<log_directory>`, else syslog.
 * Daemons (`stderr`) add stderr, except under systemd, whose journal is their stderr: then
 * they log once, to the file when a log directory is set, else to stderr only. A file that
 * cannot be opened (`fileFailed`) falls back to where a missing directory would send lines.
 */
export function chooseOutputs(
  options: { directory: boolean; stderr: boolean; systemd: boolean; fileFailed?: boolean },
): OutputChoice {
  const file = options.directory && !options.fileFailed;
  if (options.stderr && options.systemd) return { file, syslog: false, stderr: !file };
  return { file, syslog: !file, stderr: options.stderr };
}

/** Whether this process was started by systemd (a unit sets INVOCATION_ID, the journal JOURNAL_STREAM). */
export function startedBySystemd(env: (name: string) => string | undefined): boolean {
  return Boolean(env("INVOCATION_ID") || env("JOURNAL_STREAM"));
}

/** The root category of every xferproxy logger. */
export const ROOT_CATEGORY = "xferproxy";

/** Builds the logtape sinks for the outputs that are present. */
export function buildSinks(outputs: LogOutputs): Record<string, Sink> {
  const sinks: Record<string, Sink> = {};
  if (outputs.appendFile) {
    const append = outputs.appendFile;
    sinks.file = (record: LogRecord) =>
      append(`${outputs.now().toISOString()} xferproxy[${outputs.pid}]: ${formatRecord(record)}`);
  }
  if (outputs.syslog) {
    const send = outputs.syslog;
    sinks.syslog = (record: LogRecord) => send(SYSLOG_SEVERITY[record.level], formatRecord(record));
  }
  if (outputs.stderr) {
    const write = outputs.stderr;
    sinks.stderr = (record: LogRecord) => write(`xferproxy: ${formatRecord(record)}`);
  }
  return sinks;
}

/** Configures logtape once for this process. logtape's own meta log is silenced so it never prints. */
export async function setupLogging(settings: LogSettings, outputs: LogOutputs): Promise<void> {
  const sinks = buildSinks(outputs);
  const lowestLevel: LogLevel = levelFor(settings.logLevel);
  await configure({
    reset: true,
    sinks,
    loggers: [
      { category: [ROOT_CATEGORY], lowestLevel, sinks: Object.keys(sinks) },
      { category: ["logtape", "meta"], lowestLevel: "fatal", sinks: [] },
    ],
  });
  if (outputs.refusedFile) {
    logger("log").warn(
      "Not logging to {path}: {reason}; its lines go to {instead}",
      { ...outputs.refusedFile },
    );
  }
}

/** Undoes `setupLogging` (tests, and before exit). */
export async function teardownLogging(): Promise<void> {
  await reset();
}

/**
 * Runs `fn` with logging set up as `config` says (no config: syslog, level 0), then flushes
 * and releases the outputs, also when set-up or `fn` fails. Every mode logs through this.
 * A `ServiceStartError` from `fn` is logged here, as Aspera Proxy's `ERR Failed to initialize
 * proxy service: reason`.
 */
export async function withLogging<T>(
  config: LogConfig | undefined,
  open: OpenLogs,
  fn: () => T | Promise<T>,
): Promise<T> {
  let outputs: ClosableLogOutputs | undefined;
  let ready = false;
  try {
    outputs = open(config?.logDirectory || undefined);
    await setupLogging({ logLevel: config?.logLevel ?? 0 }, outputs);
    ready = true;
    return await fn();
  } catch (error) {
    // A daemon that cannot start says so once in its log; where that reached stderr, main.ts
    // prints nothing more.
    if (!(error instanceof ServiceStartError) || !ready) throw error;
    logger().error(`${SERVICE_START_FAILED}: {reason}`, { reason: error.message });
    throw outputs?.stderr ? error.asShown() : error;
  } finally {
    await teardownLogging();
    await outputs?.close();
  }
}

/** A logger under the xferproxy root category. */
export function logger(...category: string[]): Logger {
  return getLogger([ROOT_CATEGORY, ...category]);
}
