/**
 * The nftables backend: our own `ip`/`ip6` table, sessions as timed map
 * elements that the holding helper refreshes, every change one `nft -f`
 * transaction. Call mutating methods under the helper lock.
 * @module
 */

import type { CommandRunner } from "../platform/runner.ts";
import { NetfilterError } from "./iptables.ts";
import {
  addLine,
  chooseSlot,
  deleteLine,
  natElements,
  nftFamily,
  parseKeys,
  parseRegistry,
  registryComment,
  type RegistryEntry,
  tableText,
} from "./nft_plan.ts";
import { type DnatBackend, type DnatSession, type InstalledSession, toInstalled } from "./types.ts";

/** Creates the nftables backend over a command runner. */
export function nftablesBackend(runner: CommandRunner): DnatBackend {
  const nft = async (args: string[], stdin?: string): Promise<string> => {
    const result = await runner.run("nft", args, stdin === undefined ? {} : { stdin });
    if (result.code !== 0) {
      throw new NetfilterError(`nft ${args.join(" ")} failed: ${result.stderr.trim()}`);
    }
    return result.stdout;
  };
  const hasTable = (family: 4 | 6) =>
    runner.run("nft", ["list", "table", nftFamily(family), "xferproxy"]).then((r) => r.code === 0);
  const registry = async (family: 4 | 6): Promise<RegistryEntry[]> =>
    (await hasTable(family))
      ? parseRegistry(await nft(["-j", "list", "set", nftFamily(family), "xferproxy", "sessions"]))
      : [];
  const present = async (family: 4 | 6) => {
    const f = nftFamily(family);
    const keys = new Map<string, Set<string>>();
    keys.set("dnat_port", parseKeys(await nft(["-j", "list", "map", f, "xferproxy", "dnat_port"])));
    keys.set("dnat_addr", parseKeys(await nft(["-j", "list", "map", f, "xferproxy", "dnat_addr"])));
    keys.set("flows", parseKeys(await nft(["-j", "list", "set", f, "xferproxy", "flows"])));
    return keys;
  };
  const familyOf = (s: InstalledSession): 4 | 6 => (s.client.includes(":") ? 6 : 4);
  /** One transaction: drop `removed` sessions, (re)add `added`, keeping NAT elements other sessions still need. */
  const apply = async (
    family: 4 | 6,
    removed: readonly RegistryEntry[],
    added: readonly { slot: number; session: DnatSession }[],
  ) => {
    const entries = await registry(family);
    const keys = await present(family);
    const remaining = entries.filter((e) =>
      !removed.some((r) => r.slot === e.slot) && !added.some((a) => a.slot === e.slot)
    );
    const needed = new Set(
      [...remaining.map((e) => e.session), ...added.map((a) => toInstalled(a.session))].flatMap(
        natElements,
      ).map((n) => `${n.set}|${n.key}`),
    );
    const lines: string[] = [];
    for (
      const entry of [
        ...removed,
        ...entries.filter((e) => added.some((a) => a.slot === e.slot)),
      ]
    ) {
      if (entries.some((e) => e.slot === entry.slot)) {
        lines.push(deleteLine(family, "sessions", String(entry.slot)));
      }
      for (const n of natElements(entry.session)) {
        const id = `${n.set}|${n.key}`;
        if (keys.get(n.set)?.has(n.key) && !needed.has(id)) {
          lines.push(deleteLine(family, n.set, n.key));
          keys.get(n.set)?.delete(n.key);
        }
      }
    }
    for (const { slot, session } of added) {
      lines.push(
        addLine(family, { set: "sessions", key: String(slot), comment: registryComment(session) }),
      );
      for (const n of natElements(toInstalled(session))) {
        // Re-adding refreshes the timeout: delete first (in the same transaction) when present.
        if (keys.get(n.set)?.has(n.key)) {
          lines.push(deleteLine(family, n.set, n.key));
          keys.get(n.set)?.delete(n.key);
        }
        lines.push(addLine(family, n));
      }
    }
    if (lines.length) await nft(["-f", "-"], lines.join("\n") + "\n");
  };
  const slotOf = async (session: DnatSession): Promise<RegistryEntry | undefined> =>
    (await registry(session.client.family)).find((e) => e.session.id === session.id);

  return {
    name: "nftables",
    async ensureReady(family) {
      if (!(await hasTable(family))) await nft(["-f", "-"], tableText(family));
    },
    async add(session) {
      const entries = await registry(session.client.family);
      const slot = chooseSlot(session.id, new Set(entries.map((e) => e.slot)));
      await apply(session.client.family, [], [{ slot, session }]);
    },
    async replace(before, after) {
      const entry = await slotOf(before);
      if (!entry) {
        throw new NetfilterError(`session ${before.id} is not in the nftables registry (expired?)`);
      }
      await apply(before.client.family, [], [{ slot: entry.slot, session: after }]);
    },
    async refresh(session) {
      const entry = await slotOf(session);
      // Expired meanwhile (the helper was stopped): put it back.
      const slot = entry?.slot ??
        chooseSlot(session.id, new Set((await registry(session.client.family)).map((e) => e.slot)));
      await apply(session.client.family, [], [{ slot, session }]);
    },
    async remove(ids) {
      const removed: InstalledSession[] = [];
      for (const family of [4, 6] as const) {
        const doomed = (await registry(family)).filter((e) => ids.has(e.session.id));
        if (doomed.length === 0) continue;
        await apply(family, doomed, []);
        removed.push(...doomed.map((e) => e.session));
      }
      return removed;
    },
    async list() {
      const all: InstalledSession[] = [];
      for (const family of [4, 6] as const) {
        all.push(...(await registry(family)).map((e) => e.session));
      }
      return all.filter((s) => familyOf(s) === 4 || familyOf(s) === 6);
    },
    async teardown() {
      for (const family of [4, 6] as const) {
        if (await hasTable(family)) await nft(["delete", "table", nftFamily(family), "xferproxy"]);
      }
    },
  };
}
