/**
 * A backend that reports each call's outcome: the DNAT service counts
 * netfilter changes and failures for /metrics and judges from the last call
 * whether netfilter answers (/healthz). Behaviour is the backend's own.
 * @module
 */

import type { DnatBackend, DnatSession } from "./types.ts";

/** Told after every call: its name, whether it changes the kernel, and its error if it failed. */
export type NetfilterObserver = (op: string, mutating: boolean, error?: unknown) => void;

/** Wraps `backend` so that `observe` hears of every call. */
export function observedBackend(backend: DnatBackend, observe: NetfilterObserver): DnatBackend {
  const wrap = <A extends unknown[], R>(
    op: string,
    mutating: boolean | ((result: R) => boolean),
    call: (...args: A) => Promise<R>,
  ) =>
  async (...args: A): Promise<R> => {
    let result: R;
    try {
      result = await call(...args);
    } catch (error) {
      observe(op, mutating !== false, error);
      throw error;
    }
    observe(op, typeof mutating === "function" ? mutating(result) : mutating);
    return result;
  };
  const refresh = wrap(
    "refresh",
    true,
    (sessions: readonly DnatSession[]) => backend.refresh(sessions),
  );
  return {
    ...backend,
    ensureReady: wrap("ensure_ready", false, (family) => backend.ensureReady(family)),
    add: wrap("add", true, (sessions) => backend.add(sessions)),
    remove: wrap("remove", true, (sessions, remaining) => backend.remove(sessions, remaining)),
    replace: wrap(
      "replace",
      true,
      (before, after, remaining) => backend.replace(before, after, remaining),
    ),
    // A reconcile changes the kernel only when it put something back or converted it.
    reconcile: wrap(
      "reconcile",
      (r) => r.repaired.length + r.converted.length > 0,
      (wanted) => backend.reconcile(wanted),
    ),
    list: wrap("list", false, () => backend.list()),
    removeTagged: wrap("remove_tagged", true, (ids) => backend.removeTagged(ids)),
    // Refreshing nothing (the loop's rounds with no session) changes nothing.
    refresh: (sessions) => sessions.length === 0 ? backend.refresh(sessions) : refresh(sessions),
    teardown: wrap("teardown", true, () => backend.teardown()),
  };
}
