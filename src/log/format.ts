/**
 * Log line rendering, shared by every sink. Lines keep Aspera Proxy's
 * wording (`LOG Received connection request from …`) with structured fields
 * appended as `key=value`.
 * @module
 */

import type { LogLevel, LogRecord } from "@logtape/logtape";

/** The level words of Aspera Proxy's log lines. */
export const LEVEL_WORD: Readonly<Record<LogLevel, string>> = {
  trace: "TRACE",
  debug: "DBG",
  info: "LOG",
  warning: "WARN",
  error: "ERR",
  fatal: "ERR",
};

/** syslog severities (RFC 5424). */
export const SYSLOG_SEVERITY: Readonly<Record<LogLevel, number>> = {
  trace: 7,
  debug: 7,
  info: 6,
  warning: 4,
  error: 3,
  fatal: 2,
};

/** `log_level` 0/1/2 → the lowest level logged. */
export function levelFor(logLevel: 0 | 1 | 2): LogLevel {
  return logLevel === 0 ? "info" : logLevel === 1 ? "debug" : "trace";
}

/** `LOG message key=value …`, one line, control characters escaped. */
export function formatRecord(record: LogRecord): string {
  const message = record.message.map((part, i) => (i % 2 === 0 ? String(part) : renderValue(part)))
    .join("");
  // Values already placed in the message by its template are not repeated as fields.
  const inMessage = typeof record.rawMessage === "string"
    ? new Set([...record.rawMessage.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))
    : new Set();
  const fields = Object.entries(record.properties)
    .filter(([k, v]) => v !== undefined && !inMessage.has(k))
    .map(([k, v]) => `${k}=${quoteField(renderValue(v))}`);
  return oneLine([`${LEVEL_WORD[record.level]} ${message}`, ...fields].join(" "));
}

function renderValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  return String(value);
}

/**
 * A value the client chose (its command, a name it sent), for a message text: quoted when it holds
 * `=`, so it cannot plant a `key=value` that a parser would take for one of the line's fields.
 */
export function clientText(text: string): string {
  return text.includes("=") ? JSON.stringify(text) : text;
}

function quoteField(text: string): string {
  return text === "" || /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}

/**
 * Escapes control characters so a hostile value can never forge a second log
 * line or disguise one: C0, DEL, C1 (NEL U+0085 among them), the Unicode line
 * and paragraph separators, which some log viewers also break lines at, and
 * the bidirectional controls (ALM, LRM, RLM, LRE, RLE, PDF, LRO, RLO, LRI,
 * RLI, FSI, PDI), which reorder what a terminal or viewer shows: a user name
 * with U+202E reads backwards from there on.
 */
export function oneLine(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g,
    (c) => {
      const code = c.charCodeAt(0);
      return code < 0x100
        ? `\\x${code.toString(16).padStart(2, "0")}`
        : `\\u${code.toString(16).padStart(4, "0")}`;
    },
  );
}
