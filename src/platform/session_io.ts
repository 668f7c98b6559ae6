/**
 * Process-level I/O shared by the modes: the daemons' signals, and one-line
 * messages on stderr (in reverse mode, the SSH client's stream).
 * @module
 */

import { logger } from "../log/mod.ts";
import { reopenLogFiles } from "./log_outputs.ts";

const ENDING_SIGNALS = ["SIGTERM", "SIGINT"] as const;

/**
 * A long-running daemon's signals: SIGTERM or SIGINT fire the abort signal; SIGHUP reopens
 * the log files (logrotate's postrotate sends it) and never ends the daemon. `dispose` stops
 * listening.
 */
export function terminationSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  const onHangup = () => {
    const reopened = reopenLogFiles();
    if (reopened > 0) logger("log").info("Reopened the log file (SIGHUP)");
  };
  for (const name of ENDING_SIGNALS) Deno.addSignalListener(name, onSignal);
  Deno.addSignalListener("SIGHUP", onHangup);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const name of ENDING_SIGNALS) Deno.removeSignalListener(name, onSignal);
      Deno.removeSignalListener("SIGHUP", onHangup);
    },
  };
}

/** Hands stray promise rejections (a socket event, say) to `report` instead of letting them print. */
export function catchStrayRejections(report: (reason: unknown) => void): void {
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    report(event.reason);
  });
}

/** Writes one line to stderr, synchronously; a client that is gone is ignored. */
export function writeStderrLine(line: string): void {
  const bytes = new TextEncoder().encode(line + "\n");
  try {
    let rest = bytes;
    while (rest.length > 0) rest = rest.subarray(Deno.stderr.writeSync(rest));
  } catch { /* the client is gone */ }
}
