/**
 * Process-level I/O shared by the modes: the signals that end a process, and
 * one-line messages on stderr (in reverse mode, the SSH client's stream).
 * @module
 */

const ENDING_SIGNALS = ["SIGHUP", "SIGTERM", "SIGINT"] as const;

/** An abort signal that fires on SIGHUP, SIGTERM or SIGINT; `dispose` stops listening. */
export function terminationSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  for (const name of ENDING_SIGNALS) Deno.addSignalListener(name, onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const name of ENDING_SIGNALS) Deno.removeSignalListener(name, onSignal);
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
