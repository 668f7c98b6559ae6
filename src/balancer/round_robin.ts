/**
 * Round-robin selection with faulty marks (Aspera Proxy: "Load Balancing"). Pure:
 * the state comes in and goes out as plain data; `balancer.ts` keeps it in a
 * locked file shared by every session process.
 * @module
 */

/** Rotation counters per rule and faulty marks per host, as stored. */
export interface BalancerState {
  /** rule key → index of the host the next session starts at. */
  readonly rotations: Readonly<Record<string, number>>;
  /** host key (`ip:port`) → epoch ms until which it is skipped. */
  readonly faulty: Readonly<Record<string, number>>;
}

/** The state of a fresh installation. */
export function emptyState(): BalancerState {
  return { rotations: {}, faulty: {} };
}

/** Reads stored state, dropping anything malformed (a corrupt file must never stop sessions). */
export function normalizeState(raw: unknown): BalancerState {
  if (typeof raw !== "object" || raw === null) return emptyState();
  const numbers = (value: unknown): Record<string, number> => {
    if (typeof value !== "object" || value === null) return {};
    return Object.fromEntries(
      Object.entries(value).filter(([, v]) =>
        typeof v === "number" && Number.isSafeInteger(v) && v >= 0
      ),
    );
  };
  const { rotations, faulty } = raw as Record<string, unknown>;
  return { rotations: numbers(rotations), faulty: numbers(faulty) };
}

/** The hosts to try for one session, in order, and the state after this pick. */
export interface Pick {
  /** Indexes into the rule's host list; faulty hosts left out. */
  readonly order: readonly number[];
  /** Hosts skipped because they are marked faulty, with the time their mark ends. */
  readonly skipped: readonly { index: number; until: number }[];
  readonly state: BalancerState;
}

/** A mark never lasts longer than this from now, whatever the file says. */
export const MAX_FAULTY_MS = 120_000;

/**
 * Starts at the rule's counter, advances it by one, and orders the hosts from
 * there, skipping those marked faulty. Expired marks are dropped; a mark
 * further ahead than MAX_FAULTY_MS (a forged or clock-skewed file) is cut
 * back to it, so no file can disable a host for longer.
 */
export function pickHosts(
  state: BalancerState,
  ruleKey: string,
  hostKeys: readonly string[],
  now: number,
): Pick {
  const count = hostKeys.length;
  const faulty = Object.fromEntries(
    Object.entries(state.faulty).filter(([, until]) => until > now)
      .map(([host, until]) => [host, Math.min(until, now + MAX_FAULTY_MS)]),
  );
  if (count === 0) return { order: [], skipped: [], state: { ...state, faulty } };
  const start = (state.rotations[ruleKey] ?? 0) % count;
  const order: number[] = [];
  const skipped: { index: number; until: number }[] = [];
  for (let k = 0; k < count; k++) {
    const index = (start + k) % count;
    const until = faulty[hostKeys[index] as string];
    if (until !== undefined) skipped.push({ index, until });
    else order.push(index);
  }
  return {
    order,
    skipped,
    state: { rotations: { ...state.rotations, [ruleKey]: (start + 1) % count }, faulty },
  };
}

/** Marks a host faulty until `now + seconds`. */
export function markFaulty(
  state: BalancerState,
  hostKey: string,
  now: number,
  seconds: number,
): BalancerState {
  return { ...state, faulty: { ...state.faulty, [hostKey]: now + seconds * 1000 } };
}
