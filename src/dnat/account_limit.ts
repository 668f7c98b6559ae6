/**
 * How many connections each account holds to the DNAT service, and when the service refuses one:
 * a group member opening connections in a loop must not take the service's descriptors and
 * memory from everyone else. Pure: counts in, decisions out.
 * @module
 */

/**
 * Connections one account may hold open at once. A session holds one from its start to its
 * hand-off (seconds while a server is probed): far more than a burst of one account's sessions
 * needs.
 */
export const MAX_CONNECTIONS_PER_ACCOUNT = 1024;
/** The refusals of one account of one kind (past the limit, not admitted) are logged at most this often. */
export const OVER_LIMIT_LOG_EVERY_MS = 60_000;

/** The connections each account holds now. */
export interface AccountLimit {
  /** Counts one more for `uid`; false (nothing counted) when it holds the limit already. */
  admit(uid: number): boolean;
  /** One of `uid`'s admitted connections ended. */
  release(uid: number): void;
  /**
   * Whether a refusal of `uid` at `now` is to be logged: the first of its `kind` (too many
   * connections, not admitted) in a while.
   */
  logRefusal(uid: number, now: number, kind?: "connections" | "admission"): boolean;
}

/** A limit of `max` connections per account. */
export function accountLimit(max = MAX_CONNECTIONS_PER_ACCOUNT): AccountLimit {
  const open = new Map<number, number>();
  const logged = new Map<string, number>();
  return {
    admit(uid) {
      const held = open.get(uid) ?? 0;
      if (held >= max) return false;
      open.set(uid, held + 1);
      return true;
    },
    release(uid) {
      const left = (open.get(uid) ?? 1) - 1;
      if (left > 0) open.set(uid, left);
      else open.delete(uid);
    },
    logRefusal(uid, now, kind = "connections") {
      const key = `${kind} ${uid}`;
      if (now - (logged.get(key) ?? -Infinity) < OVER_LIMIT_LOG_EVERY_MS) return false;
      logged.set(key, now);
      return true;
    },
  };
}
