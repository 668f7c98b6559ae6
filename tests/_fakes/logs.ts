/**
 * Log outputs that record, in order, when they are opened, every line, and
 * when they are closed: tests can tell what was logged where, and whether
 * the logs were out before something else happened.
 * @module
 */

import type { ClosableLogOutputs, OpenLogs } from "../../src/log/mod.ts";

/** Recorded log activity; `events` may be shared with the test's other fakes. */
export interface RecordedLogs {
  readonly open: OpenLogs;
  /** `open <directory|syslog>`, `log <line>`, `close`, in order. */
  readonly events: string[];
  /** Only the lines. */
  lines(): string[];
}

/** Outputs that write into `events`: to the file when a directory is given, else to syslog. */
export function recordLogs(events: string[] = []): RecordedLogs {
  return {
    events,
    open(directory) {
      events.push(`open ${directory ?? "syslog"}`);
      const write = (line: string) => void events.push(`log ${line}`);
      const outputs: ClosableLogOutputs = {
        now: () => new Date(0),
        pid: 4242,
        close: () => {
          events.push("close");
          return Promise.resolve();
        },
        ...(directory ? { appendFile: write } : { syslog: (_severity, line) => write(line) }),
      };
      return outputs;
    },
    lines: () => events.filter((e) => e.startsWith("log ")).map((e) => e.slice(4)),
  };
}
