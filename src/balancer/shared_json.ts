/**
 * The shared state the balancer keeps: one JSON value that concurrent
 * session processes update under a lock. platform/locked_file.ts implements
 * it with a locked file; tests use an in-memory one.
 * @module
 */

/** Read-modify-write of one shared JSON value. */
export interface SharedJson {
  /** Runs `change` on the current value (undefined when missing or unparsable) under the lock. */
  update<T>(change: (current: unknown) => { value: unknown; result: T }): Promise<T>;
}

/** One JSON value in memory, updates in order: the DNAT service's balancer state (a restart starts afresh). */
export function memoryJson(): SharedJson {
  let value: unknown;
  let chain: Promise<unknown> = Promise.resolve();
  return {
    update(change) {
      const run = chain.then(() => {
        const { value: next, result } = change(value);
        value = next;
        return result;
      });
      chain = run.catch(() => {});
      return run;
    },
  };
}
