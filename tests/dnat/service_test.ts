import { assertEquals } from "../_assert.ts";
import { install } from "../../src/dnat/install.ts";
import {
  learnIntervalMs,
  type ReportedFlow,
  reportsLearning,
  runService,
  SERVICE_TIMING,
  type ServiceDeps,
} from "../../src/dnat/service.ts";
import type { Registration } from "../../src/dnat/deps.ts";
import { parseInline } from "../config/_load.ts";
import { fakeDnatDeps } from "../_fakes/dnat.ts";
import { dnatSession, markedFlow, registration } from "./_build.ts";
import { type DnatSession, toInstalled } from "../../src/dnat/types.ts";
import { sessionService } from "../../src/dnat/service_sessions.ts";
import { createBalancer } from "../../src/balancer/balancer.ts";
import { memoryJson } from "../../src/balancer/shared_json.ts";
import { fakeLogger } from "../_fakes/logger.ts";
import { fakeProc } from "../_fakes/proc.ts";

const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/k</keyfile></rule>
</rules></rproxy></server>`).config!;

function request(owner: number): Registration {
  return registration(owner, { start: 1_000 });
}

/**
 * Runs the service on a fake clock; `script` runs before each of its sleeps with the
 * simulated ms elapsed, and the service stops at `untilMs`.
 */
function serviceRun(untilMs: number, script: (elapsed: number) => void | Promise<void>) {
  const fakes = fakeDnatDeps(config);
  const stop = new AbortController();
  const started = fakes.clock.now();
  const beats: number[] = [];
  let accounting = 0;
  const deps: ServiceDeps = {
    ...fakes.deps,
    stop: stop.signal,
    heartbeat: () => Promise.resolve(void beats.push(fakes.clock.now() - started)),
    enableAccounting: () => Promise.resolve(++accounting === 1),
    sleep: async (ms) => {
      await script(fakes.clock.now() - started);
      await fakes.clock.sleep(ms);
      if (fakes.clock.now() - started >= untilMs) stop.abort();
    },
  };
  return { ...fakes, deps, beats, run: () => runService(deps), accounting: () => accounting };
}

Deno.test("the service removes a session's rules within the liveness interval after its owner ends", async () => {
  let ended = 0;
  let gone = 0;
  const bed = serviceRun(10_000, (elapsed) => {
    if (elapsed >= 3000 && !ended) {
      bed.processes.running.delete(77);
      ended = elapsed;
    }
    if (ended && !gone && bed.store.registry.entries.length === 0) gone = elapsed;
  });
  bed.processes.running.set(77, { uid: 0, start: 1_000 });
  const { forwarding: { session } } = await install(bed.deps, request(77));
  await bed.run();
  assertEquals(gone > 0 && gone - ended <= SERVICE_TIMING.livenessEveryMs + 200, true);
  assertEquals(bed.backend.kernel.has(session.id), false);
  assertEquals(bed.conntrack.purged.at(-1), "udp 198.18.1.2:*>33001");
  assertEquals(bed.accounting(), 1);
  assertEquals(bed.beats[0], 0);
  assertEquals(bed.beats.length >= 2, true);
});

Deno.test("the service gives memory back once its first round put the rules back, then every 10 minutes", async () => {
  const calls: string[] = [];
  const bed = serviceRun(2 * SERVICE_TIMING.releaseMemoryEveryMs + 1000, () => {});
  const started = bed.clock.now();
  bed.processes.running.set(77, { uid: 0, start: 1_000 });
  const { forwarding: { session } } = await install(bed.deps, request(77));
  // A restart: the kernel lost the rules; the first round reconciles them.
  bed.backend.flush();
  await runService({
    ...bed.deps,
    releaseMemory: () => {
      calls.push(`${bed.clock.now() - started} ms: rules ${bed.backend.kernel.has(session.id)}`);
      return Promise.resolve();
    },
  });
  const every = SERVICE_TIMING.releaseMemoryEveryMs;
  assertEquals(calls.length, 3);
  assertEquals(calls[0], "0 ms: rules true");
  // Measured from the round's start: the fake clock moves only in the round's sleeps.
  assertEquals(calls.slice(1).map((c) => Number(c.split(" ")[0])), [every, 2 * every]);
});

Deno.test("the service learns a source port as soon as the first flow shows", async () => {
  const bed = serviceRun(3000, (elapsed) => {
    if (elapsed >= 1000 && bed.conntrack.flowList.length === 0) {
      bed.conntrack.flowList.push({ src: "198.18.1.2", sport: 40000, dport: 33001 });
    }
  });
  bed.processes.running.set(77, { uid: 0, start: 1_000 });
  await install(bed.deps, request(77));
  await bed.run();
  assertEquals(bed.store.registry.entries[0]?.forwarding?.session.clientPort, 40000);
});

Deno.test("the service puts back rules a firewall reload dropped", async () => {
  const bed = serviceRun(6000, (elapsed) => {
    if (elapsed >= 2500 && elapsed < 2700) bed.backend.flush();
  });
  bed.processes.running.set(77, { uid: 0, start: 1_000 });
  const { forwarding: { session } } = await install(bed.deps, request(77));
  await bed.run();
  assertEquals(bed.backend.kernel.has(session.id), true);
  assertEquals(bed.backend.ops.some((o) => o.startsWith("reconcile")), true);
});

Deno.test("a failing round is logged and the next one runs", async () => {
  let calls = 0;
  const bed = serviceRun(2 * SERVICE_TIMING.livenessEveryMs + 1000, () => {});
  const lookup = bed.processes.lookup;
  bed.processes.running.set(77, { uid: 0, start: 1_000 });
  await install(bed.deps, request(77));
  const deps = {
    ...bed.deps,
    processes: {
      ...bed.processes,
      lookup: (pids: readonly number[]) => {
        if (++calls === 1) return Promise.reject(new Error("ps failed"));
        bed.processes.running.delete(77);
        return lookup(pids);
      },
    },
  };
  await runService(deps);
  assertEquals(bed.store.registry.entries, []);
});

/**
 * A session registered at `at` ms into a scripted run, its client's first datagram `flowAfterMs`
 * later (reported through `fire` when the run follows events); notes when its port was learned.
 */
function lateSession(at: number, flowAfterMs = 0) {
  const times = { registeredAt: 0, flowAt: 0, learnedAt: 0 };
  const step = async (
    bed: ReturnType<typeof serviceRun>,
    elapsed: number,
    fire: (flow?: ReportedFlow) => void = () => {},
  ) => {
    if (elapsed >= at && !times.registeredAt) {
      times.registeredAt = elapsed;
      bed.processes.running.set(77, { uid: 0, start: 1_000 });
      await install(bed.deps, request(77));
    }
    if (times.registeredAt && !times.flowAt && elapsed >= times.registeredAt + flowAfterMs) {
      times.flowAt = elapsed;
      bed.conntrack.flowList.push({ src: "198.18.1.2", sport: 40000, dport: 33001 });
      fire();
    }
    if (
      !times.learnedAt && bed.store.registry.entries[0]?.forwarding?.session.clientPort === 40000
    ) {
      times.learnedAt = elapsed;
    }
  };
  /** True when the port was learned after its flow, within `ms`. */
  const learnedWithin = (ms: number) =>
    times.learnedAt >= times.flowAt && times.learnedAt - times.flowAt <= ms;
  return { times, step, learnedWithin };
}

Deno.test("a session registered while the service runs has its port learned within a few rounds", async () => {
  const late = lateSession(1300);
  const bed: ReturnType<typeof serviceRun> = serviceRun(4000, (elapsed) => late.step(bed, elapsed));
  await bed.run();
  // Not at the next liveness round (up to a second later): a round or two of the idle loop.
  assertEquals(late.learnedWithin(3 * SERVICE_TIMING.roundMs), true);
});

Deno.test("a silent session is looked for less and less often: each look runs conntrack", () => {
  assertEquals(
    [0, 4_999, 5_000, 59_999, 60_000, 3_600_000].map((age) => learnIntervalMs(age)),
    [100, 100, 1000, 1000, 5000, 5000],
  );
  // While conntrack's events report new flows, a look is only the safety net.
  assertEquals(
    [0, 4_999, 5_000, 59_999, 60_000].map((age) => learnIntervalMs(age, true)),
    [1000, 1000, 1000, 1000, 5000],
  );
});

Deno.test("an old silent session is still looked for every 5 s, whatever rounds run between", async () => {
  let learnedAt = 0;
  const bed = serviceRun(80_000, (elapsed) => {
    if (elapsed >= 70_000 && !bed.conntrack.flowList.length) {
      bed.conntrack.flowList.push({ src: "198.18.1.2", sport: 40000, dport: 33001 });
    }
    if (!learnedAt && bed.store.registry.entries[0]?.forwarding?.session.clientPort === 40000) {
      learnedAt = elapsed;
    }
  });
  bed.processes.running.set(77, { uid: 0, start: 1_000 });
  await install(bed.deps, request(77));
  await bed.run();
  // The reconcile (2 s) and liveness (5 s) rounds in between do not put the look off.
  assertEquals(learnedAt >= 70_000 && learnedAt <= 75_000 + 2 * SERVICE_TIMING.roundMs, true);
});

/** What conntrack reports of the client's first datagram to the session's proxy port. */
const FIRST_FLOW: ReportedFlow = { src: "198.18.1.2", dst: "198.18.1.1", dport: 33001 };

/** A service run whose conntrack events the test fires; counts the learning listings. */
function followedRun(
  untilMs: number,
  script: (elapsed: number, fire: (flow?: ReportedFlow) => void) => Promise<void>,
) {
  let live = true;
  let reported: ReportedFlow[] = [];
  const listings: number[] = [];
  const bed = serviceRun(
    untilMs,
    (elapsed) => script(elapsed, (flow = FIRST_FLOW) => void reported.push(flow)),
  );
  const flows = bed.deps.conntrack.flows;
  const deps: ServiceDeps = {
    ...bed.deps,
    conntrack: {
      ...bed.deps.conntrack,
      flows: (proxy) => {
        listings.push(bed.clock.now());
        return flows(proxy);
      },
    },
    flows: {
      live: () => live,
      take: () => {
        const taken = reported;
        reported = [];
        return taken;
      },
    },
  };
  return { ...bed, deps, listings, stopFollowing: () => void (live = false) };
}

Deno.test("with conntrack's events followed, a new session's flow is looked for when it is reported", async () => {
  // The client's first datagram 700 ms after the session registered.
  const late = lateSession(1300, 700);
  const bed: ReturnType<typeof followedRun> = followedRun(
    4000,
    (elapsed, fire) => late.step(bed, elapsed, fire),
  );
  const started = bed.clock.now();
  await runService(bed.deps);
  assertEquals(late.learnedWithin(2 * SERVICE_TIMING.roundMs), true);
  // One look, for the reported flow: none while the session waited for it (polling: seven).
  assertEquals(bed.listings.map((at) => at - started >= late.times.flowAt), [true]);
});

Deno.test("with the events followed, a flow whose event was lost is found by the safety net within a second", async () => {
  const late = lateSession(1000);
  const bed: ReturnType<typeof followedRun> = followedRun(
    4000,
    (elapsed) => late.step(bed, elapsed),
  );
  await runService(bed.deps);
  assertEquals(late.learnedWithin(1000 + 2 * SERVICE_TIMING.roundMs), true);
  assertEquals(bed.listings.length, 1);
});

Deno.test("a reported flow no learning session may own is not worth a listing", async () => {
  const late = lateSession(1000, 1500);
  const bed: ReturnType<typeof followedRun> = followedRun(4000, async (elapsed, fire) => {
    // Another client, another proxy address, another port of the proxy: all reported, none its.
    if (elapsed >= 1500 && elapsed < 1600) {
      fire({ ...FIRST_FLOW, src: "198.18.1.9" });
      fire({ ...FIRST_FLOW, dst: "198.18.1.7" });
      fire({ ...FIRST_FLOW, dport: 33002 });
    }
    await late.step(bed, elapsed, fire);
  });
  const started = bed.clock.now();
  await runService(bed.deps);
  assertEquals(late.learnedWithin(2 * SERVICE_TIMING.roundMs), true);
  // The safety net's look a second after it registered, and the one for its own flow; none for
  // the others' at 1600.
  assertEquals(bed.listings.map((at) => at - started), [2100, 2600]);
});

Deno.test("a conntrack listing that fails is said once, and the rest of each round still runs", async () => {
  const log = fakeLogger();
  const bed = serviceRun(5000, () => {});
  bed.processes.running.set(77, { uid: 0, start: 1_000 });
  await install(bed.deps, request(77));
  let listings = 0;
  let reconciles = 0;
  const reconcile = bed.backend.reconcile;
  await runService({
    ...bed.deps,
    log,
    backend: {
      ...bed.backend,
      reconcile: (wanted) => {
        reconciles++;
        return reconcile(wanted);
      },
    },
    conntrack: {
      ...bed.deps.conntrack,
      flows: () => {
        listings++;
        return Promise.reject(new Error("conntrack: command not found"));
      },
    },
  });
  const said = log.records.filter((r) => r.text.startsWith("Cannot list conntrack"));
  assertEquals(said.map((r) => r.fields.error), ["conntrack: command not found"]);
  // Looked for at its interval (every round while young), not stuck on it: reconciled too.
  assertEquals(listings >= 40, true);
  assertEquals(reconciles >= 2, true);
});

Deno.test("a session registered in a round that fails half-way is still looked for", async () => {
  // Registered just before the round whose repair (every 2 s) fails.
  const late = lateSession(1900);
  const bed: ReturnType<typeof serviceRun> = serviceRun(3000, (elapsed) => late.step(bed, elapsed));
  await runService({
    ...bed.deps,
    backend: {
      ...bed.backend,
      reconcile: () => Promise.reject(new Error("ip6tables-restore failed")),
    },
  });
  assertEquals(late.learnedWithin(3 * SERVICE_TIMING.roundMs), true);
});

Deno.test("reportsLearning() matches a flow to a learning session's client, proxy and span", () => {
  const s = dnatSession({ portCount: 2 });
  assertEquals(
    [
      FIRST_FLOW,
      { ...FIRST_FLOW, dport: 33002 },
      { ...FIRST_FLOW, dport: 33003 },
      { ...FIRST_FLOW, src: "198.18.1.9" },
    ].map((f) => reportsLearning([f], [s])),
    [true, true, false, false],
  );
  assertEquals([reportsLearning("many", []), reportsLearning([FIRST_FLOW], [])], [true, false]);
});

Deno.test("when the events stop, a new session's flow is looked for every round again", async () => {
  const late = lateSession(1000);
  const bed: ReturnType<typeof followedRun> = followedRun(4000, (elapsed) => {
    if (elapsed >= 1000) bed.stopFollowing();
    return late.step(bed, elapsed);
  });
  await runService(bed.deps);
  assertEquals(late.learnedWithin(3 * SERVICE_TIMING.roundMs), true);
});

Deno.test("an idle service looks at the kernel only for orphans, every orphan interval", async () => {
  const bed = serviceRun(2.5 * SERVICE_TIMING.orphansEveryMs, () => {});
  const orphan = toInstalled(dnatSession({ id: "dead0000", owner: { pid: 99, start: 1 } }));
  bed.backend.kernel.set(orphan.id, orphan);
  let listed = 0;
  let reconciled = 0;
  const { list, reconcile } = bed.backend;
  const backend = {
    ...bed.backend,
    list: () => (listed++, list()),
    reconcile: (wanted: readonly DnatSession[]) => (reconciled++, reconcile(wanted)),
  };
  await runService({ ...bed.deps, backend });
  assertEquals(bed.backend.kernel.has(orphan.id), false);
  // At 0, 1 and 2 intervals: each listing costs a netfilter dump that competes with forwarding.
  assertEquals(listed, 3);
  assertEquals(reconciled, 0);
});

Deno.test("a flow whose purge failed is swept at the next orphan interval, and counted", async () => {
  let endedAt = 0;
  let left = 0;
  const bed = serviceRun(SERVICE_TIMING.orphansEveryMs + 1000, (elapsed) => {
    if (elapsed >= 10_000 && !endedAt) {
      endedAt = elapsed;
      bed.processes.running.delete(77);
    }
    // Its rules went at the next liveness round; the flow outlived the failed purge.
    if (elapsed < SERVICE_TIMING.orphansEveryMs) left = bed.conntrack.markedList.length;
  });
  bed.processes.running.set(77, { uid: 0, start: 1_000 });
  await install(bed.deps, request(77));
  bed.conntrack.markedList.push(markedFlow());
  const conntrack = {
    ...bed.conntrack,
    purge: () => Promise.reject(new Error("conntrack -D failed: Bad file descriptor")),
  };
  let listed = 0;
  const counted: number[] = [];
  await runService({
    ...bed.deps,
    conntrack: {
      ...conntrack,
      // Counted once a sweep: each lists IPv4 first.
      listMarked: (
        mark,
        family,
      ) => (listed += family === 4 ? 1 : 0, bed.conntrack.listMarked(mark, family)),
    },
    countSwept: (flows) => void counted.push(flows),
  });
  assertEquals(bed.store.registry.entries, []);
  assertEquals(left, 1);
  assertEquals(bed.conntrack.markedList, []);
  assertEquals(bed.conntrack.sweeps, ["udp 198.18.1.2:*>198.18.1.1:33001 0x78700000"]);
  // One listing at the first round (the live session's flow stayed) and one at the next.
  assertEquals([listed, counted], [2, [1]]);
});

Deno.test("sessions registered by others are adopted outside the lock: one already gone ends at once", async () => {
  const bed = serviceRun(1000, () => {});
  const log = fakeLogger();
  const sessions = sessionService({
    ...bed.deps,
    log,
    proc: fakeProc([]),
    // Its owner is gone: the watch cannot be set, so the session ends, taking the lock.
    exits: { watch: () => Promise.resolve(undefined), release() {} },
    balancer: createBalancer(memoryJson(), Date.now),
    reachable: () => Promise.resolve(true),
    sshCounters: () => Promise.resolve(undefined),
    newId: () => crypto.randomUUID(),
  });
  bed.processes.running.set(77, { uid: 0, start: 1_000 });
  await install(bed.deps, request(77));
  // Registered through sudo while the service is not looking; its owner runs for the install only.
  bed.processes.running.delete(77);
  await runService({ ...bed.deps, sessions });
  assertEquals(bed.store.registry.entries, []);
  assertEquals(log.records.some((r) => r.text === "Connection closed"), true);
});

Deno.test("a service that cannot prepare its chains does not start: no round, no heartbeat", async () => {
  const bed = serviceRun(3000, () => {});
  bed.backend.ensureReady = () => Promise.reject(new Error("iptables-restore: chain busy"));
  let message = "";
  await bed.run().catch((error) => message = error.message);
  assertEquals([message, bed.beats.length], ["iptables-restore: chain busy", 0]);
});

Deno.test("accounting that cannot be turned on is said, and the service runs on", async () => {
  const bed = serviceRun(1000, () => {});
  const log = fakeLogger();
  await runService({
    ...bed.deps,
    log,
    enableAccounting: () =>
      Promise.reject(new Error("sysctl -w net.netfilter.nf_conntrack_acct=1 failed: EPERM")),
  });
  const said = log.records.find((r) => r.level === "warn" && /accounting/.test(r.text));
  assertEquals(
    said?.text,
    "Cannot turn on conntrack accounting; byte counts stay 0: sysctl -w net.netfilter.nf_conntrack_acct=1 failed: EPERM",
  );
  assertEquals(bed.beats.length >= 1, true);
});
