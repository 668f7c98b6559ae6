/**
 * A logger that keeps what code logs, for code that takes a Logger: each
 * record as its level, its message with placeholders filled in, and its
 * fields.
 * @module
 */

import type { Logger } from "@logtape/logtape";

/** One logged record. */
export interface LoggedRecord {
  readonly level: "debug" | "info" | "warn" | "error" | "fatal";
  /** The message with `{name}` placeholders replaced by their fields. */
  readonly text: string;
  readonly fields: Record<string, unknown>;
}

/** A logger recording into `records`. */
export function fakeLogger(records: LoggedRecord[] = []): Logger & { records: LoggedRecord[] } {
  const make = (context: Record<string, unknown>): Logger => {
    const at =
      (level: LoggedRecord["level"]) => (message: string, props?: Record<string, unknown>) => {
        const fields = { ...context, ...(props ?? {}) };
        const text = message.replace(/\{(\w+)\}/g, (_, key) => String(fields[key]));
        records.push({ level, text, fields });
      };
    return {
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      warning: at("warn"),
      error: at("error"),
      fatal: at("fatal"),
      with: (more: Record<string, unknown>) => make({ ...context, ...more }),
    } as unknown as Logger;
  };
  return Object.assign(make({}), { records });
}
