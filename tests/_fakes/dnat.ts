/**
 * In-memory DNAT backend and conntrack for helper tests.
 * @module
 */

import { type DnatBackend, type InstalledSession, toInstalled } from "../../src/dnat/types.ts";
import type { Conntrack } from "../../src/dnat/conntrack.ts";

/** A backend that keeps sessions in a map and logs operations. */
export function fakeBackend(
  initial: InstalledSession[] = [],
): DnatBackend & { sessions: Map<string, InstalledSession>; ops: string[] } {
  const sessions = new Map(initial.map((s) => [s.id, s]));
  const ops: string[] = [];
  return {
    name: "iptables",
    sessions,
    ops,
    ensureReady: (family) => {
      ops.push(`ensure ${family}`);
      return Promise.resolve();
    },
    add(s) {
      ops.push(`add ${s.id} ${s.clientPort ?? "*"}`);
      sessions.set(s.id, toInstalled(s));
      return Promise.resolve();
    },
    replace(before, after) {
      ops.push(`replace ${before.id} ${after.clientPort ?? "*"}`);
      sessions.set(after.id, toInstalled(after));
      return Promise.resolve();
    },
    remove(ids) {
      const removed = [...sessions.values()].filter((s) => ids.has(s.id));
      for (const s of removed) sessions.delete(s.id);
      ops.push(`remove ${removed.map((s) => s.id).join(",")}`);
      return Promise.resolve(removed);
    },
    list: () => Promise.resolve([...sessions.values()]),
    refresh: (s) => {
      ops.push(`refresh ${s.id}`);
      return Promise.resolve();
    },
    teardown: () => {
      ops.push("teardown");
      return Promise.resolve();
    },
  };
}

/** conntrack whose flows the test sets; purges are recorded. */
export function fakeConntrack(): Conntrack & { ports: number[]; purged: string[] } {
  const ports: number[] = [];
  const purged: string[] = [];
  return {
    ports,
    purged,
    purge(s) {
      purged.push(`${s.client.text}:${s.clientPort ?? "*"}`);
      return Promise.resolve();
    },
    purgeOtherPorts(s, keep) {
      for (const p of ports.filter((p) => !keep.has(p))) purged.push(`${s.client.text}:${p}`);
      return Promise.resolve();
    },
    sourcePorts: () => Promise.resolve([...ports]),
  };
}
