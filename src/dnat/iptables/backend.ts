/**
 * The iptables backend: our own chains, every change one
 * `iptables-restore --noflush --wait` transaction.
 * @module
 */

import type { CommandRunner } from "../../process/runner.ts";
import { type Conntrack, conntrackTool } from "../conntrack.ts";
import { NetfilterError } from "../errors.ts";
import {
  ensureText,
  isLegacyRule,
  type OurRule,
  parseOurRules,
  preroutingUnhooked,
  restoreText,
  sameRules,
  sessionRules,
  sessionsOf,
  teardownText,
} from "./plan.ts";
import {
  type BackendCapabilities,
  type DnatBackend,
  type DnatSession,
  type InstalledSession,
  SESSION_CT_MARK,
  sessionProtocols,
} from "../types.ts";

/** Every rule carries its session's tag, so the kernel alone says whose a rule is. */
export const IPTABLES_CAPABILITIES: BackendCapabilities = {
  tcp: true,
  tagging: true,
  listing: true,
  expiring: false,
};

const TOOLS = {
  4: { save: "iptables-save", restore: "iptables-restore" },
  6: { save: "ip6tables-save", restore: "ip6tables-restore" },
} as const;

/** The same session objects in the same order (a registry read unchanged gives the same ones). */
function sameSessions(a: readonly DnatSession[], b: readonly DnatSession[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

function byFamily<T extends { client: { family: 4 | 6 } }>(items: readonly T[], family: 4 | 6) {
  return items.filter((s) => s.client.family === family);
}

/**
 * How long chains and jumps found in place count as in place for an install: as long as the
 * service's reconcile takes to notice and repair a lost jump for every live session anyway.
 */
export const READY_FRESH_MS = 2000;

/**
 * Creates the iptables backend over a command runner; `conntrack` marks the
 * live flows of sessions converted from the per-session plan.
 */
export function iptablesBackend(
  runner: CommandRunner,
  conntrack: Pick<Conntrack, "mark"> = conntrackTool(runner),
  now: () => number = () => performance.now(),
): DnatBackend {
  const save = async (family: 4 | 6): Promise<string> => {
    const result = await runner.run(TOOLS[family].save, []);
    if (result.code !== 0) {
      throw new NetfilterError(`${TOOLS[family].save} failed: ${result.stderr.trim()}`);
    }
    return result.stdout;
  };
  const restore = async (family: 4 | 6, text: string | undefined): Promise<void> => {
    if (!text) return;
    const result = await runner.run(TOOLS[family].restore, ["--noflush", "--wait"], {
      stdin: text,
    });
    if (result.code !== 0) {
      throw new NetfilterError(`${TOOLS[family].restore} failed: ${result.stderr.trim()}`);
    }
  };
  const rulesOf = async (family: 4 | 6): Promise<OurRule[]> => parseOurRules(await save(family));
  /**
   * Per family, when chains and jumps were last seen or put in place. A burst's installs then
   * cost one iptables-restore each, not an iptables-save before it as well (a process each, on
   * the session's path); an add that fails as the chains went meanwhile makes them again.
   */
  const readyAt = new Map<4 | 6, number>();
  /**
   * Families whose PREROUTING jump an install (or the readiness probe) had to put back: the next
   * reconcile purges what met no rule meanwhile, whoever put it back.
   */
  const unhookedSeen = new Set<4 | 6>();
  const makeReady = async (family: 4 | 6, before?: string) => {
    const current = before ?? await save(family);
    if (preroutingUnhooked(current)) unhookedSeen.add(family);
    const chains = ensureText(current);
    await restore(family, chains);
    readyAt.set(family, now());
    return chains;
  };
  /** Per family, what the last reconcile that found every rule in place saw. */
  const settled = new Map<4 | 6, { save: string; sessions: readonly DnatSession[] }>();
  let knownFamilies: Array<4 | 6> | undefined;
  const families = async (): Promise<Array<4 | 6>> => {
    // IPv6 is optional: a host without ip6tables simply has no IPv6 sessions. Asked once.
    if (!knownFamilies) {
      const v6 = await runner.run(TOOLS[6].save, ["-t", "nat"]).then(
        (r) => r.code === 0,
        () => false,
      );
      knownFamilies = v6 ? [4, 6] : [4];
    }
    return knownFamilies;
  };
  /**
   * Replaces rules, nat table first. Sessions still holding per-session
   * ACCEPT rules (a proxy upgraded with sessions live) get their live flows
   * marked before those rules go, so the fixed rule takes over without a
   * dropped packet.
   */
  const swap = async (
    family: 4 | 6,
    remove: readonly OurRule[],
    add: readonly OurRule[],
    converting: readonly DnatSession[] = [],
  ) => {
    const inTable = (rules: readonly OurRule[], table: string) =>
      rules.filter((r) => r.table === table);
    await restore(family, restoreText(inTable(remove, "nat"), inTable(add, "nat")));
    for (const session of converting) {
      for (const protocol of sessionProtocols(session)) {
        await conntrack.mark(session, protocol, SESSION_CT_MARK);
      }
    }
    await restore(family, restoreText(inTable(remove, "filter"), inTable(add, "filter")));
  };
  const removeIds = async (ids: ReadonlySet<string>, only?: 4 | 6) => {
    const removed: InstalledSession[] = [];
    for (const family of only ? [only] : await families()) {
      const doomed = (await rulesOf(family)).filter((r) => ids.has(r.id));
      await restore(family, restoreText(doomed, []));
      removed.push(...sessionsOf(doomed));
    }
    return removed;
  };
  return {
    name: "iptables",
    via: "iptables-restore",
    capabilities: IPTABLES_CAPABILITIES,
    tool: "iptables",
    async ensureReady(family) {
      const at = readyAt.get(family);
      if (at !== undefined && now() - at < READY_FRESH_MS) return;
      await makeReady(family);
    },
    async add(sessions) {
      for (const family of [4, 6] as const) {
        const text = restoreText([], byFamily(sessions, family).flatMap(sessionRules));
        await restore(family, text).catch(async (error) => {
          // A firewall reload or `reap --all` since the chains were last seen: make them, again.
          if (!readyAt.has(family)) throw error;
          readyAt.delete(family);
          await makeReady(family);
          await restore(family, text);
        });
      }
    },
    async remove(sessions) {
      for (const family of [4, 6] as const) {
        const mine = byFamily(sessions, family);
        if (mine.length === 0) continue;
        // The planned text is what the kernel holds, unless a reload or a crash changed it:
        // then find the session's rules by their tag instead.
        await restore(family, restoreText(mine.flatMap(sessionRules), [])).catch(() =>
          removeIds(new Set(mine.map((s) => s.id)), family)
        );
      }
    },
    async replace(before, after) {
      const family = before.client.family;
      const current = (await rulesOf(family)).filter((r) => r.id === before.id);
      await swap(family, current, sessionRules(after), current.some(isLegacyRule) ? [after] : []);
    },
    async reconcile(wanted) {
      const result: { repaired: string[]; converted: string[]; rehooked?: string[] } = {
        repaired: [],
        converted: [],
      };
      for (const family of await families()) {
        const mine = byFamily(wanted, family);
        // Nothing to assert: never bring back chains that `reap --all` or an administrator removed.
        if (mine.length === 0) continue;
        const before = await save(family);
        // The same rules as when everything was last found in place, for the same sessions: in
        // place still. Parsing a thousand sessions' rules every round is megabytes of garbage.
        const last = settled.get(family);
        const unchanged = last !== undefined && sameSessions(last.sessions, mine) &&
          sameRules(last.save, before);
        if (unchanged) readyAt.set(family, now());
        const chains = unchanged ? undefined : await makeReady(family, before);
        // A new flow of any of them that came while our PREROUTING chain or jump was gone met no
        // rule of ours, and stays so: put back here, or since the last round by an install.
        if (unhookedSeen.delete(family)) {
          result.rehooked = [...result.rehooked ?? [], ...mine.map((s) => s.id)];
        }
        if (unchanged) continue;
        settled.delete(family);
        const present = chains === undefined ? parseOurRules(before) : await rulesOf(family);
        const remove: OurRule[] = [];
        const add: OurRule[] = [];
        const converting: DnatSession[] = [];
        const byId = new Map<string, OurRule[]>();
        for (const rule of present) byId.set(rule.id, [...(byId.get(rule.id) ?? []), rule]);
        for (const session of mine) {
          const expected = sessionRules(session);
          const actual = byId.get(session.id) ?? [];
          const legacy = actual.filter(isLegacyRule);
          const current = actual.filter((r) => !isLegacyRule(r));
          const intact = current.length === expected.length &&
            current.every((r, i) => r.spec === expected[i]?.spec);
          if (!intact) {
            // Missing, partial or out of order: the session's rules again, mark before DNAT.
            remove.push(...current);
            add.push(...expected);
          }
          if (legacy.length) {
            remove.push(...legacy);
            converting.push(session);
            result.converted.push(session.id);
          } else if (!intact) {
            result.repaired.push(session.id);
          }
        }
        await swap(family, remove, add, converting);
        if (chains === undefined && remove.length === 0 && add.length === 0) {
          settled.set(family, { save: before, sessions: mine });
        }
      }
      return result;
    },
    async list() {
      const all: InstalledSession[] = [];
      for (const family of await families()) all.push(...sessionsOf(await rulesOf(family)));
      return all;
    },
    removeTagged: (ids) => removeIds(ids),
    refresh: (_sessions: readonly DnatSession[]) => Promise.resolve(),
    async teardown() {
      readyAt.clear();
      for (const family of await families()) {
        const doomed = await rulesOf(family);
        await restore(family, restoreText(doomed, []));
        await restore(family, teardownText(await save(family)));
      }
    },
  };
}
