/**
 * In-memory stand-ins for the DNAT core's dependencies: a backend whose
 * "kernel" can be flushed like a firewall reload, conntrack with flows the
 * test sets, a registry store, a process table, and a clock.
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type DnatBackend,
  type DnatSession,
  type InstalledSession,
  SESSION_CT_MARK,
  toInstalled,
} from "../../src/dnat/types.ts";
import type { Conntrack, Flow, FlowCounters, MarkedFlow } from "../../src/dnat/conntrack.ts";
import type { DnatDeps, RegistryStore } from "../../src/dnat/deps.ts";
import type { ProcessInfo, ProcessTable } from "../../src/dnat/owner.ts";
import { emptyRegistry, type Registry } from "../../src/dnat/registry.ts";
import type { Config } from "../../src/config/mod.ts";

/** A backend over a map of what "the kernel" holds, logging every operation. */
export interface FakeBackend extends DnatBackend {
  /** Session id → what the kernel holds for it. */
  readonly kernel: Map<string, InstalledSession>;
  readonly ops: string[];
  /** Drops everything, as a firewall reload would. */
  flush(): void;
  /** How many `remove` calls still fail, as a busy or broken netfilter would. */
  failRemovals: number;
}

const label = (s: DnatSession) => `${s.id.slice(0, 4)}:${s.clientPort ?? "*"}`;

/** Creates the fake backend; `tagged` are kernel sessions that no registry knows. */
export function fakeBackend(tagged: InstalledSession[] = []): FakeBackend {
  const kernel = new Map(tagged.map((s) => [s.id, s]));
  const ops: string[] = [];
  const backend: FakeBackend = {
    failRemovals: 0,
    name: "iptables",
    via: "memory",
    capabilities: { tcp: true, tagging: true, listing: true, expiring: false },
    tool: "iptables",
    kernel,
    ops,
    flush: () => kernel.clear(),
    ensureReady(family) {
      ops.push(`ensure ${family}`);
      return Promise.resolve();
    },
    add(sessions) {
      for (const s of sessions) kernel.set(s.id, toInstalled(s));
      ops.push(`add ${sessions.map(label).join(",")}`);
      return Promise.resolve();
    },
    remove(sessions) {
      if (backend.failRemovals > 0) {
        backend.failRemovals--;
        ops.push(`remove failed ${sessions.map(label).join(",")}`);
        return Promise.reject(new Error("iptables-restore: Resource temporarily unavailable"));
      }
      for (const s of sessions) kernel.delete(s.id);
      ops.push(`remove ${sessions.map(label).join(",")}`);
      return Promise.resolve();
    },
    replace(before, after) {
      kernel.set(after.id, toInstalled(after));
      ops.push(`replace ${label(before)} -> ${label(after)}`);
      return Promise.resolve();
    },
    reconcile(wanted) {
      const repaired = wanted.filter((s) =>
        JSON.stringify(kernel.get(s.id)) !== JSON.stringify(toInstalled(s))
      );
      for (const s of repaired) kernel.set(s.id, toInstalled(s));
      if (repaired.length) ops.push(`reconcile ${repaired.map(label).join(",")}`);
      return Promise.resolve({ repaired: repaired.map((s) => s.id), converted: [] });
    },
    list: () => Promise.resolve([...kernel.values()]),
    removeTagged(ids) {
      const removed = [...kernel.values()].filter((s) => ids.has(s.id));
      for (const s of removed) kernel.delete(s.id);
      ops.push(`removeTagged ${removed.map((s) => s.id.slice(0, 4)).join(",")}`);
      return Promise.resolve(removed);
    },
    refresh(sessions) {
      ops.push(`refresh ${sessions.length}`);
      return Promise.resolve();
    },
    teardown() {
      ops.push("teardown");
      return Promise.resolve();
    },
  };
  return backend;
}

/**
 * conntrack whose flows the test sets; purges are recorded and report fixed counters. Flows with
 * the session mark are the test's `markedList`; a marked removal deletes those its selectors match
 * and records each selector in `sweeps`.
 */
export function fakeConntrack(
  counters: FlowCounters = { bytes: 2800, packets: 40 },
): Conntrack & {
  flowList: Flow[];
  purged: string[];
  spared: string[];
  marked: string[];
  markedList: MarkedFlow[];
  sweeps: string[];
} {
  const flowList: Flow[] = [];
  const purged: string[] = [];
  /** The learned ports each purge was told to leave alone. */
  const spared: string[] = [];
  const marked: string[] = [];
  const markedList: MarkedFlow[] = [];
  const sweeps: string[] = [];
  return {
    flowList,
    purged,
    spared,
    marked,
    markedList,
    sweeps,
    listMarked: (mark, family) =>
      Promise.resolve(
        mark === SESSION_CT_MARK ? markedList.filter((f) => f.src.family === family) : [],
      ),
    removeMarked(selectors, mark) {
      for (const s of selectors) {
        sweeps.push(
          `${s.protocol} ${s.client.text}:${s.clientPort ?? "*"}>${s.proxy.text}:${s.proxyPort} 0x${
            mark.toString(16)
          }`,
        );
        if (mark !== SESSION_CT_MARK) continue;
        const left = markedList.filter((f) =>
          !(f.protocol === s.protocol && f.src.text === s.client.text &&
            f.dst.text === s.proxy.text && f.dport === s.proxyPort &&
            (s.clientPort === undefined || f.sport === s.clientPort))
        );
        markedList.splice(0, markedList.length, ...left);
      }
      return Promise.resolve();
    },
    mark(s, protocol, mark) {
      marked.push(
        `${protocol} ${s.client.text}:${s.clientPort ?? "*"}>${s.proxyPort} 0x${mark.toString(16)}`,
      );
      return Promise.resolve();
    },
    purge(sessions, protocol = "udp", spare = []) {
      for (const s of spare.filter((s) => s.clientPort !== undefined)) {
        spared.push(`${protocol} ${s.client.text}:${s.clientPort}>${s.proxyPort}`);
      }
      for (const s of sessions) {
        purged.push(`${protocol} ${s.client.text}:${s.clientPort ?? "*"}>${s.proxyPort}`);
      }
      return Promise.resolve(sessions.map(() => counters));
    },
    purgeUntranslated(sessions, protocol = "udp") {
      for (const s of sessions) {
        purged.push(
          `untranslated ${protocol} ${s.client.text}:${s.clientPort ?? "*"}>${s.proxyPort}`,
        );
      }
      return Promise.resolve();
    },
    // Like `conntrack -L --orig-dst PROXY`: every client's flows to the proxy.
    flows: () => Promise.resolve([...flowList]),
  };
}

/** An in-memory registry behind a real (promise-chained) lock. */
export function fakeStore(initial: Registry = emptyRegistry()): RegistryStore & {
  registry: Registry;
  writes: number;
} {
  let chain: Promise<unknown> = Promise.resolve();
  const store = {
    registry: initial,
    writes: 0,
    lock<T>(fn: () => Promise<T>): Promise<T> {
      const run = chain.then(fn, fn);
      chain = run.catch(() => {});
      return run;
    },
    read: () => Promise.resolve(store.registry),
    write(registry: Registry) {
      store.registry = registry;
      store.writes++;
      return Promise.resolve();
    },
    stamp: () => Promise.resolve(String(store.writes)),
  };
  return store;
}

/** Processes the test starts and ends. */
export function fakeProcesses(): ProcessTable & { running: Map<number, ProcessInfo> } {
  const running = new Map<number, ProcessInfo>();
  return {
    running,
    lookup: (pids) =>
      Promise.resolve(
        new Map([...running].filter(([pid]) => pids.includes(pid))),
      ),
  };
}

/** A clock the test moves; `sleep` advances it. */
export function fakeClock(start = 1_800_000_000_000): {
  now(): number;
  sleep(ms: number): Promise<void>;
  advance(ms: number): void;
} {
  let now = start;
  return {
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
    advance: (ms) => void (now += ms),
  };
}

/** The DNAT core's dependencies, all fake. */
export function fakeDnatDeps(config: Config) {
  const backend = fakeBackend();
  const conntrack = fakeConntrack();
  const store = fakeStore();
  const processes = fakeProcesses();
  const clock = fakeClock();
  const deps: DnatDeps = {
    backend,
    conntrack,
    store,
    processes,
    config,
    forwardingEnabled: () => Promise.resolve(true),
    now: clock.now,
    sleep: clock.sleep,
    log: getLogger(["xferproxy", "test"]),
  };
  return { deps, backend, conntrack, store, processes, clock };
}
