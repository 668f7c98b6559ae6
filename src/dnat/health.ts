/**
 * Whether this node takes new reverse sessions, as `/healthz` answers a load
 * balancer: it does when the config in use is the one on disk, netfilter
 * answered its last call, the session socket listens and the node is not
 * drained. Otherwise the first reason, in one line.
 * @module
 */

/** What the service knows about itself. */
export interface HealthInputs {
  /** Why the config file on disk is not in use (the last good one is). */
  readonly configError?: string;
  /** The last netfilter call's failure, while no later call has worked. */
  readonly netfilterError?: string;
  /** The session socket is listening. */
  readonly listening: boolean;
  /** Since when (ms since the epoch) the node is drained. */
  readonly drainedSince?: number;
  /** The administrator's reason for the drain (printable ASCII, root's). */
  readonly drainReason?: string;
}

/** The answer: 200 with "ok", or 503 with the reason. */
export interface Health {
  readonly status: 200 | 503;
  readonly line: string;
}

/** Judges the node's health; draining first, since it is what an administrator asked for. */
export function judgeHealth(inputs: HealthInputs): Health {
  if (inputs.drainedSince !== undefined) {
    const since = new Date(inputs.drainedSince).toISOString();
    const why = inputs.drainReason ? ` (${inputs.drainReason})` : "";
    return { status: 503, line: `draining since ${since}${why}: new sessions are refused` };
  }
  if (!inputs.listening) return { status: 503, line: "the session socket is not listening" };
  if (inputs.netfilterError) return { status: 503, line: `netfilter: ${inputs.netfilterError}` };
  if (inputs.configError) return { status: 503, line: `config: ${inputs.configError}` };
  return { status: 200, line: "ok" };
}

/** Whether netfilter answered its last call, from the calls the service makes anyway. */
export interface NetfilterWatch {
  /** Hears each call (observed_backend.ts). */
  observe(op: string, mutating: boolean, error?: unknown): void;
  /** The last failure, once calls failed twice in a row and no change has worked since. */
  error(): string | undefined;
  /** When a change or the probe last worked (ms since the epoch); -Infinity before the first. */
  answeredAt(): number;
}

/** Failed calls in a row before /healthz says so: one failed change must not flap the node. */
export const NETFILTER_FAILURES_TO_FAIL = 2;

/**
 * Keeps the outcome of netfilter calls. Only a change or the readiness probe that works clears
 * a failure: reads that work while every change fails must not make the node look healthy.
 */
export function netfilterWatch(now: () => number): NetfilterWatch {
  let failure: string | undefined;
  let inRow = 0;
  let answered = -Infinity;
  return {
    observe(op, mutating, error) {
      if (error !== undefined) {
        const text = error instanceof Error ? error.message : String(error);
        failure = `${op} failed: ${text.split("\n")[0]}`;
        inRow++;
      } else if (mutating || op === "ensure_ready") {
        failure = undefined;
        inRow = 0;
        answered = now();
      }
    },
    error: () => (inRow >= NETFILTER_FAILURES_TO_FAIL ? failure : undefined),
    answeredAt: () => answered,
  };
}
