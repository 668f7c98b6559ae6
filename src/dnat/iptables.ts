/**
 * The iptables backend: our own chains, every change one
 * `iptables-restore --noflush --wait` transaction.
 * @module
 */

import type { CommandRunner } from "../platform/runner.ts";
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

/** iptables failed; the message carries its stderr. */
export class NetfilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NetfilterError";
  }
}

const TOOLS = {
  4: { save: "iptables-save", restore: "iptables-restore" },
  6: { save: "ip6tables-save", restore: "ip6tables-restore" },
} as const;

/** Creates the iptables backend over a command runner. */
export function iptablesBackend(
  runner: CommandRunner,
): DnatBackend & { teardown(): Promise<void> } {
  const save = async (family: 4 | 6): Promise<string> => {
    const result = await runner.run(TOOLS[family].save, []);
    if (result.code !== 0) {
      throw new NetfilterError(`${TOOLS[family].save} failed: ${result.stderr.trim()}`);
    }
    return result.stdout;
  };
  const restore = async (family: 4 | 6, text: string): Promise<void> => {
    if (!text) return;
    const result = await runner.run(TOOLS[family].restore, ["--noflush", "--wait"], {
      stdin: text,
    });
    if (result.code !== 0) {
      throw new NetfilterError(`${TOOLS[family].restore} failed: ${result.stderr.trim()}`);
    }
  };
  const rulesOf = async (family: 4 | 6): Promise<OurRule[]> => parseOurRules(await save(family));
  const families = async (): Promise<Array<4 | 6>> => {
    // IPv6 is optional: a host without ip6tables simply has no IPv6 sessions.
    const v6 = await runner.run(TOOLS[6].save, ["-t", "nat"]).then(
      (r) => r.code === 0,
      () => false,
    );
    return v6 ? [4, 6] : [4];
  };
  return {
    name: "iptables",
    async ensureReady(family) {
      const text = ensureText(await save(family));
      if (text) await restore(family, text);
    },
    async add(session) {
      await restore(session.client.family, restoreText([], sessionRules(session)));
    },
    async replace(before, after) {
      const family = before.client.family;
      const current = (await rulesOf(family)).filter((r) => r.id === before.id);
      await restore(family, restoreText(current, sessionRules(after)));
    },
    async remove(ids) {
      const removed: InstalledSession[] = [];
      for (const family of await families()) {
        const doomed = (await rulesOf(family)).filter((r) => ids.has(r.id));
        await restore(family, restoreText(doomed, []));
        removed.push(...sessionsOf(doomed));
      }
      return removed;
    },
    async list() {
      const all: InstalledSession[] = [];
      for (const family of await families()) all.push(...sessionsOf(await rulesOf(family)));
      return all;
    },
    refresh: (_session: DnatSession) => Promise.resolve(),
    async teardown() {
      for (const family of await families()) {
        const text = teardownText(await save(family));
        if (text) await restore(family, text);
      }
    },
  };
}
