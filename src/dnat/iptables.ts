/**
 * The iptables backend: our own chains, every change one
 * `iptables-restore --noflush --wait` transaction.
 * @module
 */

import { UserError } from "../errors.ts";
import type { CommandRunner } from "../process/runner.ts";
import {
  ensureText,
  type OurRule,
  parseOurRules,
  restoreText,
  sessionRules,
  sessionsOf,
  teardownText,
} from "./iptables_plan.ts";
import type { DnatBackend, DnatSession, InstalledSession } from "./types.ts";

/** A netfilter tool failed; the message carries its stderr. */
export class NetfilterError extends UserError {}

const TOOLS = {
  4: { save: "iptables-save", restore: "iptables-restore" },
  6: { save: "ip6tables-save", restore: "ip6tables-restore" },
} as const;

function byFamily<T extends { client: { family: 4 | 6 } }>(items: readonly T[], family: 4 | 6) {
  return items.filter((s) => s.client.family === family);
}

/** Creates the iptables backend over a command runner. */
export function iptablesBackend(runner: CommandRunner): DnatBackend {
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
    async ensureReady(family) {
      await restore(family, ensureText(await save(family)));
    },
    async add(sessions) {
      for (const family of [4, 6] as const) {
        await restore(family, restoreText([], byFamily(sessions, family).flatMap(sessionRules)));
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
      await restore(family, restoreText(current, sessionRules(after)));
    },
    async reconcile(wanted) {
      const repaired: string[] = [];
      for (const family of await families()) {
        const mine = byFamily(wanted, family);
        // Nothing to assert: never bring back chains that `reap --all` or an administrator removed.
        if (mine.length === 0) continue;
        const before = await save(family);
        const chains = ensureText(before);
        await restore(family, chains);
        const present = chains === undefined ? parseOurRules(before) : await rulesOf(family);
        const stale: OurRule[] = [];
        const missing: OurRule[] = [];
        for (const session of mine) {
          const expected = sessionRules(session);
          const actual = present.filter((r) => r.id === session.id);
          const same = (a: OurRule, b: OurRule) => a.chain === b.chain && a.spec === b.spec;
          const absent = expected.filter((e) => !actual.some((a) => same(a, e)));
          stale.push(...actual.filter((a) => !expected.some((e) => same(a, e))));
          if (absent.length) {
            missing.push(...absent);
            repaired.push(session.id);
          }
        }
        await restore(family, restoreText(stale, missing));
      }
      return repaired;
    },
    async list() {
      const all: InstalledSession[] = [];
      for (const family of await families()) all.push(...sessionsOf(await rulesOf(family)));
      return all;
    },
    removeTagged: (ids) => removeIds(ids),
    refresh: (_sessions: readonly DnatSession[]) => Promise.resolve(),
    async teardown() {
      for (const family of await families()) {
        const doomed = await rulesOf(family);
        await restore(family, restoreText(doomed, []));
        await restore(family, teardownText(await save(family)));
      }
    },
  };
}
