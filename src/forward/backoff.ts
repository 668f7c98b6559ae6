/**
 * Failed logins per key (a client address, a target user name): a count
 * that leaks away with time, and a hold that doubles with each failure past
 * the free ones. Pure: the clock is injected.
 * @module
 */

/** How failures are counted and held. */
export interface BackoffLimits {
  /** Failures allowed before a hold. */
  readonly free: number;
  /** One failure is forgotten every this many milliseconds. */
  readonly leakMs: number;
  /** The longest hold, in seconds. */
  readonly maxHoldS: number;
  /** Keys remembered at most; the longest quiet goes first. */
  readonly maxKeys: number;
}

/**
 * Three failures, then 1 s, 2 s, 4 s … at most 5 min. A failure is forgotten every 5 min, so
 * typos from a shared address at most one per 5 min on average never add up, and one guess per
 * 5 min is what a patient attacker gets.
 */
export const LOGIN_BACKOFF: BackoffLimits = {
  free: 3,
  leakMs: 300_000,
  maxHoldS: 300,
  maxKeys: 50_000,
};

/** The failures of every key. */
export interface Backoff {
  /** Milliseconds the key is still held for, 0 when it is not. */
  heldFor(key: string): number;
  /** Counts one failure of the key. */
  fail(key: string): void;
  /** Forgets the key's failures. */
  clear(key: string): void;
  /** Keys remembered now. */
  readonly size: number;
}

/** A failure table over a clock. */
export function createBackoff(now: () => number, limits: BackoffLimits = LOGIN_BACKOFF): Backoff {
  const keys = new Map<string, { count: number; at: number; until: number }>();
  return {
    heldFor(key) {
      const entry = keys.get(key);
      return entry ? Math.max(0, entry.until - now()) : 0;
    },
    fail(key) {
      const t = now();
      const entry = keys.get(key) ?? { count: 0, at: t, until: 0 };
      // Whole failures drain, one per leakMs since `at`; the part of a period not yet drained
      // stays, so failures just under the drain rate never add up, nor does one just over it lose.
      const leaked = Math.floor((t - entry.at) / limits.leakMs);
      const left = Math.max(0, entry.count - leaked);
      const at = left === 0 ? t : entry.at + leaked * limits.leakMs;
      const count = left + 1;
      const until = count >= limits.free
        ? t + Math.min(2 ** (count - limits.free), limits.maxHoldS) * 1000
        : 0;
      // Re-inserted, so the Map's order is the order of last failure: the first key is the quietest.
      keys.delete(key);
      keys.set(key, { count, at, until });
      if (keys.size > limits.maxKeys) keys.delete(keys.keys().next().value as string);
    },
    clear(key) {
      keys.delete(key);
    },
    get size() {
      return keys.size;
    },
  };
}
