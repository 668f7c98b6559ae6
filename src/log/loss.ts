/**
 * Log lines that could not be written (the log directory full or
 * unwritable): sessions keep working, but the loss is counted, and its start
 * and its end are said once each, elsewhere (syslog).
 * @module
 */

/** What to say when writing starts failing, or works again. */
export type LossEvent =
  | { readonly kind: "failing"; readonly error: string }
  | { readonly kind: "recovered"; readonly lost: number };

/** Follows one output's writes. */
export interface LossTracker {
  /** A line could not be written; the event when this starts a run of failures. */
  failed(error: string): LossEvent | undefined;
  /** A line was written; the event when this ends a run of failures. */
  written(): LossEvent | undefined;
  /** Lines lost so far. */
  lost(): number;
}

/** A tracker that has lost nothing yet. */
export function lossTracker(): LossTracker {
  let lost = 0;
  let inRun = 0;
  let failing = false;
  return {
    failed(error) {
      lost++;
      inRun++;
      if (failing) return undefined;
      failing = true;
      return { kind: "failing", error };
    },
    written() {
      if (!failing) return undefined;
      failing = false;
      const event: LossEvent = { kind: "recovered", lost: inRun };
      inRun = 0;
      return event;
    },
    lost: () => lost,
  };
}

/** The syslog line for an event about the file at `path`, and its severity (3 err, 5 notice). */
export function lossLine(path: string, event: LossEvent): { severity: number; line: string } {
  return event.kind === "failing"
    ? {
      severity: 3,
      line:
        `Cannot write ${path}: ${event.error}; log lines are lost until it can (counted in xferproxy_log_lines_lost_total)`,
    }
    : {
      severity: 5,
      line: `Writing ${path} again; ${event.lost} log line${
        event.lost === 1 ? " was" : "s were"
      } lost`,
    };
}
