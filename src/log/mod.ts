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

/** Where log lines go; implemented in src/platform/log_outputs.ts and by test fakes. */
export interface LogOutputs {
  /** Appends one line to `<dir>/xferproxy.log`. */
  appendFile?(line: string): void;
  /** Sends one line to syslog with a severity 0-7. */
  syslog?(severity: number, line: string): void;
  /** Writes one line to stderr. */
  stderr?(line: string): void;
  /** ISO time for file lines. */
  now(): Date;
  /** Our process id, for file lines. */
  pid: number;
}

/** Which sinks to use and how verbose to be. */
export interface LogSettings {
  logLevel: 0 | 1 | 2;
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
}

/** Undoes `setupLogging` (tests, and before exit). */
export async function teardownLogging(): Promise<void> {
  await reset();
}

/** A logger under the xferproxy root category. */
export function logger(...category: string[]): Logger {
  return getLogger([ROOT_CATEGORY, ...category]);
}
