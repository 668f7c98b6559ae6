import { assertEquals, assertRejects } from "../_assert.ts";
import { install, record, SERIALISE_WAIT_MS } from "../../src/dnat/install.ts";
import {
  learnPorts,
  listForLearning,
  reapDead,
  reapOrphans,
  reconcileKernel,
} from "../../src/dnat/reconcile.ts";
import { removeEntries } from "../../src/dnat/remove.ts";
import { ForwardingDisabledError, NotAuthorizedError } from "../../src/dnat/errors.ts";
import type { ForwardingEntry } from "../../src/dnat/registry.ts";
import type { DnatSession } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import type { Registration } from "../../src/dnat/deps.ts";
import { parseInline } from "../config/_load.ts";
import { fakeDnatDeps } from "../_fakes/dnat.ts";
import { fakeLogger } from "../_fakes/logger.ts";
import { endpoint, kernelSession, markedFlow, registration } from "./_build.ts";

const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/k</keyfile></rule>
<rule host_ip="198.18.1.17"><hosts><host>198.18.2.2</host><host>198.18.2.3</host></hosts><keyfile>/k</keyfile></rule>
<rule host_ip="198.18.1.18"><hosts><host>198.18.2.2</host><host>198.18.2.3</host></hosts><keyfile>/k</keyfile><src_port_filtering>false</src_port_filtering></rule>
</rules></rproxy></server>`).config!;

const START = 1_800_000_000_000;

function request(owner: number): Registration {
  return registration(owner, { start: START });
}

/** A balanced rule's registration: host 0 is server A, host 1 server B. */
function balanced(owner: number, host: 0 | 1, rule = 2): Registration {
  return registration(owner, {
    start: START,
    claimant: { proxy: parseIp(rule === 2 ? "198.18.1.17" : "198.18.1.18")! },
    target: { rule, host, server: endpoint(host === 0 ? "198.18.2.2:22" : "198.18.2.3:22") },
  });
}

/** Waits for the lock: an install's purge runs under it after the sessions are told. */
function purged(deps: { store: { lock(f: () => Promise<void>): Promise<void> } }): Promise<void> {
  return deps.store.lock(() => Promise.resolve());
}

function setup() {
  const fakes = fakeDnatDeps(config);
  const run = (pid: number) => fakes.processes.running.set(pid, { uid: 1001, start: START });
  return { ...fakes, run };
}

Deno.test("install() records the session, installs it, and purges flows that came first", async () => {
  const { deps, backend, conntrack, store, run } = setup();
  run(77);
  const reg = request(77);
  const installed = await install(deps, reg);
  // The session is answered first: conntrack's process would only delay that answer.
  assertEquals(conntrack.purged, []);
  await purged(deps);
  const { session, filtering } = installed.forwarding;
  assertEquals(filtering, true);
  assertEquals(session.id, reg.id);
  assertEquals([session.owner, session.proxyPort, session.server.text], [
    { pid: 77, start: START },
    33001,
    "198.18.2.2",
  ]);
  assertEquals(backend.ops, ["ensure 4", `add ${session.id.slice(0, 4)}:*`]);
  assertEquals(conntrack.purged, ["udp 198.18.1.2:*>33001"]);
  const [entry] = store.registry.entries;
  assertEquals([entry?.id, entry?.uid, entry?.rule, entry?.user, entry?.upstream], [
    session.id,
    1001,
    1,
    "alice",
    "198.18.2.2:22",
  ]);
});

Deno.test("install() leaves the flow another live session of the client learned", async () => {
  const { deps, conntrack, run } = setup();
  run(77);
  run(78);
  const first = await install(deps, request(77));
  await purged(deps);
  // Learned, as learnPorts would; a second user behind the same NAT address then starts.
  const learned = learnedSibling(first, 40002);
  await deps.store.write({ entries: [learned] });
  await install(deps, request(78));
  await purged(deps);
  assertEquals(conntrack.spared, ["udp 198.18.1.2:40002>33001"]);
});

Deno.test("record() keeps a session without forwarding for its closing line, after the config's checks", async () => {
  const { deps, backend, store } = setup();
  const entry = await record(deps, request(77));
  assertEquals([entry.forwarding, backend.ops], [undefined, []]);
  assertEquals(store.registry.entries.map((e) => e.id), [entry.id]);
  await assertRejects(
    () => record(deps, registration(78, { target: { rule: 9 } })),
    NotAuthorizedError,
    "no rule 9",
  );
});

Deno.test("install() changes nothing when ip_forward is off", async () => {
  const { deps, backend, store, run } = setup();
  run(77);
  const off = { ...deps, forwardingEnabled: () => Promise.resolve(false) };
  await assertRejects(() => install(off, request(77)), ForwardingDisabledError, "ip_forward");
  assertEquals([backend.ops, store.registry.entries], [[], []]);
});

Deno.test("install() reaps sessions whose owner has ended, including a reused pid", async () => {
  const { deps, backend, store, processes, run } = setup();
  run(77);
  const first = await install(deps, request(77));
  processes.running.set(77, { uid: 1001, start: START + 10 }); // pid 77 is another process now
  run(78);
  await install(deps, request(78));
  assertEquals(store.registry.entries.map((e) => e.owner.pid), [78]);
  assertEquals(backend.ops.includes(`remove ${first.id.slice(0, 4)}:*`), true);
});

Deno.test("a client's second session to another server waits until the first has learned its port", async () => {
  const { deps, conntrack, store, clock, run } = setup();
  run(77);
  run(78);
  const toA = await install(deps, balanced(77, 0));
  let sleeps = 0;
  const waiting = {
    ...deps,
    sleep: async (ms: number) => {
      // The first session's client sends its first datagram while the second waits.
      if (++sleeps === 3) {
        conntrack.flowList.push({ src: "198.18.1.2", sport: 40000, dport: 33001 });
      }
      await clock.sleep(ms);
    },
  };
  const toB = (await install(waiting, balanced(78, 1))).forwarding.session;
  assertEquals(sleeps, 3);
  const byId = new Map(store.registry.entries.map((e) => [e.id, e.forwarding?.session]));
  assertEquals(byId.get(toA.id)?.clientPort, 40000);
  assertEquals([toB.server.text, toB.proxyPort], ["198.18.2.3", 33001]);
});

Deno.test("install() gives up after the wait, and at once when the other session never learns", async () => {
  const { deps, run, clock } = setup();
  run(77);
  run(78);
  await install(deps, balanced(77, 0));
  const started = clock.now();
  await assertRejects(
    () => install(deps, balanced(78, 1)),
    NotAuthorizedError,
    "has not sent UDP within 10 s",
  );
  assertEquals(clock.now() - started >= SERIALISE_WAIT_MS, true);
  run(79);
  run(80);
  await install(deps, balanced(79, 0, 3));
  const before = clock.now();
  await assertRejects(
    () => install(deps, balanced(80, 1, 3)),
    NotAuthorizedError,
    "without source-port filtering",
  );
  assertEquals(clock.now(), before);
});

Deno.test("install() answers before its purge, which still holds the lock; a failed purge is a warning", async () => {
  const { deps, conntrack, store, run } = setup();
  const log = fakeLogger();
  run(77);
  let finishPurge: (error?: Error) => void = () => {};
  conntrack.purge = () =>
    new Promise((resolve, reject) => {
      finishPurge = (error) => error ? reject(error) : resolve([]);
    });
  const installed = await install({ ...deps, log }, request(77));
  // Answered and recorded while the purge runs.
  assertEquals(store.registry.entries.map((e) => e.id), [installed.id]);
  let next = false;
  const after = store.lock(() => Promise.resolve(void (next = true)));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(next, false);
  finishPurge(new Error("conntrack: Operation not permitted"));
  await after;
  assertEquals(next, true);
  const warned = log.records.filter((r) => r.text.startsWith("Cannot purge stale UDP flows"));
  assertEquals(warned.map((r) => [r.level, r.fields.sessions]), [["warn", installed.id]]);
  assertEquals(store.registry.entries.map((e) => e.id), [installed.id]);
});

Deno.test("learnPorts() never learns a flow no rule translated: a stale one its purge has not reached", async () => {
  const { deps, conntrack, store, run } = setup();
  run(77);
  const a = await install(deps, request(77));
  conntrack.flowList.push(
    // Sent before the session's rule, listed while its purge was still running.
    { src: "198.18.1.2", sport: 40500, dport: 33001, untranslated: true },
    { src: "198.18.1.2", sport: 40000, dport: 33001 },
  );
  const after = await learnPorts(deps, store.registry);
  assertEquals(after.entries.find((e) => e.id === a.id)?.forwarding?.session.clientPort, 40000);
});

Deno.test("learnPorts() gives each session of a client its own flow port, then purges the rest", async () => {
  const { deps, backend, conntrack, store, run } = setup();
  run(77);
  run(78);
  const a = await install(deps, request(77));
  const b = await install(deps, request(78));
  conntrack.flowList.push(
    // Another client's flow to the same proxy port is never claimed.
    { src: "198.18.1.3", sport: 39999, dport: 33001 },
    { src: "198.18.1.2", sport: 40000, dport: 33001 },
    { src: "198.18.1.2", sport: 40001, dport: 33001 },
    { src: "198.18.1.2", sport: 40002, dport: 33001 },
  );
  const [purgedBefore, sparedBefore] = [conntrack.purged.length, conntrack.spared.length];
  const after = await learnPorts(deps, store.registry);
  const ports = new Map(after.entries.map((e) => [e.id, e.forwarding?.session.clientPort]));
  assertEquals([ports.get(a.id), ports.get(b.id)], [40000, 40001]);
  assertEquals(backend.ops.filter((o) => o.startsWith("replace")).length, 2);
  // Once both have their ports, every port of the span goes (40002 and any other; one delete
  // per proxy port however many the client sent from) but the flows of the two learned ones.
  assertEquals(conntrack.purged.slice(purgedBefore), [
    "udp 198.18.1.2:*>33001",
    "udp 198.18.1.2:*>33001",
  ]);
  assertEquals(conntrack.spared.slice(sparedBefore), [
    "udp 198.18.1.2:40000>33001",
    "udp 198.18.1.2:40001>33001",
    "udp 198.18.1.2:40000>33001",
    "udp 198.18.1.2:40001>33001",
  ]);
  // Nothing left to learn: the same registry comes back.
  assertEquals(await learnPorts(deps, after), after);
});

Deno.test("reconcileKernel() puts back what a reload dropped and reaps orphans of ended owners", async () => {
  const { deps, backend, store, run } = setup();
  run(77);
  await install(deps, request(77));
  const owner = { pid: 90, start: START };
  const orphan = kernelSession({ owner, tcpServerPort: 22 });
  const daemons = {
    ...orphan,
    id: "6dbcabeb-b71b-44a0-9e07-d0d9fccd5277",
    owner: { pid: 91, start: START },
  };
  backend.flush();
  backend.kernel.set(orphan.id, orphan);
  backend.kernel.set(daemons.id, daemons);
  run(91); // a live forward daemon's session: not ours to touch
  assertEquals(await reconcileKernel(deps, store.registry), { repaired: 1, reaped: 1, swept: 0 });
  assertEquals(
    [...backend.kernel.keys()].sort(),
    [daemons.id, store.registry.entries[0]!.id].sort(),
  );
  assertEquals(await reconcileKernel(deps, store.registry), { repaired: 0, reaped: 0, swept: 0 });
});

Deno.test("a repair purges the flows that met no rule while the rules were gone, and only then", async () => {
  const { deps, backend, conntrack, store, run } = setup();
  run(77);
  await install(deps, request(77));
  conntrack.purged.length = 0;
  // Nothing missing: no purge, a live flow is not touched.
  assertEquals(await reconcileKernel(deps, store.registry), { repaired: 0, reaped: 0, swept: 0 });
  assertEquals(conntrack.purged, []);
  backend.flush();
  assertEquals(await reconcileKernel(deps, store.registry), { repaired: 1, reaped: 0, swept: 0 });
  // Untranslated entries left by packets during the reload would send the flow to the proxy.
  assertEquals(conntrack.purged, ["untranslated udp 198.18.1.2:*>33001"]);
});

Deno.test("jumps put back: the flows that met no rule meanwhile go, of sessions not yet narrowed only", async () => {
  const { deps, backend, conntrack, store, run } = setup();
  run(77);
  run(78);
  const learning = await install(deps, request(77));
  const narrowed = await install(deps, {
    ...request(78),
    claimant: { ...request(78).claimant, client: parseIp("198.18.1.3")! },
  });
  await store.write({
    entries: store.registry.entries.map((e) =>
      e.id === narrowed.id && e.forwarding
        ? {
          ...e,
          forwarding: { ...e.forwarding, session: { ...e.forwarding.session, clientPort: 40000 } },
        }
        : e
    ),
  });
  conntrack.purged.length = 0;
  const log = fakeLogger();
  backend.reconcile = () =>
    Promise.resolve({ repaired: [], converted: [], rehooked: [learning.id, narrowed.id] });
  assertEquals(await reconcileKernel({ ...deps, log }, store.registry), {
    repaired: 0,
    reaped: 0,
    swept: 0,
  });
  assertEquals(conntrack.purged, ["untranslated udp 198.18.1.2:*>33001"]);
  const said = log.records.filter((r) => r.text.startsWith("Put back our chains"));
  assertEquals(said.map((r) => r.fields.count), [1]);
});

Deno.test("reapOrphans() sweeps flows of no session; registered, removing and kernel-only live sessions keep theirs", async () => {
  const { deps, backend, conntrack, store, run } = setup();
  run(77);
  const live = await install(deps, request(77));
  // Registered, its removal failing: its own retry purges it once it works.
  const removingId = crypto.randomUUID();
  const removing: ForwardingEntry = {
    ...live,
    id: removingId,
    removing: START,
    forwarding: {
      ...live.forwarding,
      session: { ...live.forwarding.session, id: removingId, client: parseIp("198.18.1.5")! },
    },
  };
  await store.write({ entries: [...store.registry.entries, removing] });
  // Only in the kernel: a live forward daemon's (another registry), and an ended owner's.
  const daemons = kernelSession({ owner: { pid: 91, start: START }, tcpServerPort: 22 });
  const orphan = kernelSession({
    id: "6dbcabeb-b71b-44a0-9e07-d0d9fccd5277",
    owner: { pid: 90, start: START },
    client: "198.18.1.8",
    proxyPort: 5001,
  });
  backend.kernel.set(daemons.id, daemons);
  backend.kernel.set(orphan.id, orphan);
  run(91);
  conntrack.markedList.push(
    markedFlow(),
    markedFlow({ client: "198.18.1.5" }),
    markedFlow({ client: "198.18.1.9", dport: 5000 }),
    markedFlow({ client: "198.18.1.9", dport: 5000, protocol: "tcp" }),
    // A session whose rules went but whose purge failed, and the orphan's.
    markedFlow({ client: "198.18.1.7" }),
    markedFlow({ client: "198.18.1.8", dport: 5001 }),
  );
  assertEquals(await reapOrphans(deps, store.registry), { reaped: 1, swept: 2 });
  assertEquals(conntrack.sweeps, [
    "udp 198.18.1.7:*>198.18.1.1:33001 0x78700000",
    "udp 198.18.1.8:*>198.18.1.1:5001 0x78700000",
  ]);
  assertEquals(conntrack.markedList.map((f) => `${f.protocol} ${f.src.text}`), [
    "udp 198.18.1.2",
    "udp 198.18.1.5",
    "udp 198.18.1.9",
    "tcp 198.18.1.9",
  ]);
  assertEquals(await reapOrphans(deps, store.registry), { reaped: 0, swept: 0 });
});

Deno.test("a sweep that fails is logged and tried again; the orphans it follows are reaped", async () => {
  const { deps, backend, conntrack, store } = setup();
  const log = fakeLogger();
  backend.kernel.set("orphan", kernelSession({ id: "orphan" }));
  // A listing that fails is sweep_test's: the other family is swept all the same.
  const failing = {
    ...conntrack,
    removeMarked: () => Promise.reject(new Error("conntrack -D failed: Operation not permitted")),
  };
  conntrack.markedList.push(markedFlow({ client: "198.18.1.7" }));
  assertEquals(
    await reapOrphans({ ...deps, conntrack: failing, log }, store.registry),
    { reaped: 1, swept: 0 },
  );
  assertEquals(log.records.filter((r) => r.level === "warn").map((r) => r.text), [
    "Cannot remove forwarded flows of no session; trying again later: conntrack -D failed: Operation not permitted",
  ]);
  assertEquals(await reapOrphans(deps, store.registry), { reaped: 0, swept: 1 });
});

/** Another session of the entry's client, to the same ports, that learned `clientPort`. */
function learnedSibling(entry: ForwardingEntry, clientPort: number): ForwardingEntry {
  const id = crypto.randomUUID();
  return {
    ...entry,
    id,
    forwarding: { ...entry.forwarding, session: { ...entry.forwarding.session, id, clientPort } },
  };
}

Deno.test("removeEntries() purges every source port of the session and drops it from the registry", async () => {
  const { deps, conntrack, store, run } = setup();
  run(77);
  const installed = await install(deps, request(77));
  const narrowed: DnatSession = { ...installed.forwarding.session, clientPort: 40000 };
  const entry: ForwardingEntry = {
    ...installed,
    forwarding: { ...installed.forwarding, session: narrowed },
  };
  // Another session of the same client (behind the same NAT address), its port learned.
  const sibling = learnedSibling(entry, 40002);
  const after = await removeEntries(
    deps,
    { entries: [entry, sibling] },
    [entry],
    "session ended",
  );
  assertEquals(after.registry.entries, [sibling]);
  assertEquals(after.ended, [{ entry, udp: { bytes: 2800, packets: 40 } }]);
  assertEquals(conntrack.purged.at(-1), "udp 198.18.1.2:*>33001");
  assertEquals(conntrack.spared, ["udp 198.18.1.2:40002>33001"]);
  assertEquals(store.registry.entries.length, 1);
});

Deno.test("removeEntries() spares no TCP flow: a learned port is a UDP one", async () => {
  const { deps, conntrack, run } = setup();
  run(77);
  const installed = await install(deps, request(77));
  // A forward session ends; a live session of the same client learned a port (ranges overlap).
  const forward: ForwardingEntry = {
    ...installed,
    forwarding: {
      session: { ...installed.forwarding.session, tcpServerPort: 22 },
      filtering: false,
    },
  };
  const live = learnedSibling(installed, 40002);
  conntrack.purged.length = 0;
  await removeEntries(deps, { entries: [forward, live] }, [forward], "session ended");
  assertEquals(conntrack.purged, ["udp 198.18.1.2:*>33001", "tcp 198.18.1.2:*>33001"]);
  assertEquals(conntrack.spared, ["udp 198.18.1.2:40002>33001"]);
});

Deno.test("reapDead() writes the registry only when a session ended, and says which ended", async () => {
  const { deps, store, processes, run } = setup();
  run(77);
  run(78);
  await install(deps, request(77));
  const plain = await record(deps, request(78));
  const writes = store.writes;
  const heard: string[] = [];
  const hear = (ended: readonly { entry: { id: string } }[]) =>
    heard.push(...ended.map((e) => e.entry.id));
  assertEquals(await reapDead(deps, store.registry, hear), store.registry);
  assertEquals(store.writes, writes);
  processes.running.delete(77);
  processes.running.delete(78);
  assertEquals((await reapDead(deps, store.registry, hear)).entries, []);
  assertEquals(store.writes, writes + 1);
  assertEquals(heard.length, 2);
  assertEquals(heard.includes(plain.id), true);
});

Deno.test("an owner an earlier version recorded in whole seconds stays alive; another start does not", async () => {
  const { deps, store, processes } = setup();
  const reg = request(77);
  await install(deps, reg);
  const coarse = {
    ...store.registry.entries[0]!,
    owner: { pid: 77, start: 1_800_000_000_000, coarse: true },
  };
  store.registry = { entries: [coarse] };
  processes.running.set(77, { uid: 1001, start: 1_800_000_000_730 }); // same second
  assertEquals((await reapDead(deps, store.registry)).entries.length, 1);
  processes.running.set(77, { uid: 1001, start: 1_800_000_001_000 }); // a second later: reused
  assertEquals((await reapDead(deps, store.registry)).entries.length, 0);
});

Deno.test("installs waiting for the lock together are made together: one change, one purge, one write", async () => {
  const { deps, backend, conntrack, store, run } = setup();
  const owners = [71, 72, 73, 74, 75];
  owners.forEach(run);
  const writesBefore = store.writes;
  const entries = await Promise.all(owners.map((pid) => install(deps, request(pid))));
  await purged(deps);
  const ids = entries.map((e) => e.id);
  assertEquals(store.registry.entries.map((e) => e.id), ids);
  assertEquals(backend.ops, [
    "ensure 4",
    `add ${ids.map((id) => `${id.slice(0, 4)}:*`).join(",")}`,
  ]);
  assertEquals(conntrack.purged.length, 5);
  assertEquals(store.writes - writesBefore, 1);
});

Deno.test("in one group, a client's session to another server still waits for the first to learn", async () => {
  const { deps, backend, clock, run } = setup();
  run(77);
  run(78);
  const toA = install(deps, balanced(77, 0));
  const toB = install(deps, balanced(78, 1));
  const a = await toA;
  // B was in A's group and blocked by it: it waits (the fake clock moves with each retry) and
  // gives up once the wait is over, as it would have alone.
  await assertRejects(() => toB, NotAuthorizedError, "has not sent UDP within");
  assertEquals(backend.ops.filter((op) => op.startsWith("add ")), [
    `add ${a.id.slice(0, 4)}:*`,
  ]);
  assertEquals(clock.now() - START >= SERIALISE_WAIT_MS, true);
});

Deno.test("a failed change fails every install of its group, and none is recorded", async () => {
  const { deps, backend, store, run } = setup();
  [81, 82, 83].forEach(run);
  backend.add = () => Promise.reject(new Error("iptables-restore: line 3 failed"));
  const results = await Promise.allSettled([81, 82, 83].map((pid) => install(deps, request(pid))));
  assertEquals(results.map((r) => r.status), ["rejected", "rejected", "rejected"]);
  assertEquals(store.registry.entries, []);
});

Deno.test("learnPorts() with a listing taken before the lock: only sessions recorded before it", async () => {
  const { deps, conntrack, store, clock, run } = setup();
  run(77);
  run(78);
  const early = await install(deps, request(77));
  clock.sleep(10);
  conntrack.flowList.push(
    { src: "198.18.1.2", sport: 40000, dport: 33001 },
    { src: "198.18.1.2", sport: 40005, dport: 33001 },
  );
  const listing = await listForLearning(deps, store.registry);
  // Recorded after the listing began: a flow in it could be one its install purged.
  const late = await install(deps, request(78));
  const after = await learnPorts(deps, store.registry, listing);
  const ports = new Map(after.entries.map((e) => [e.id, e.forwarding?.session.clientPort]));
  assertEquals([ports.get(early.id), ports.get(late.id)], [40000, undefined]);
  // The next listing takes the late one.
  clock.sleep(10);
  const next = await learnPorts(deps, after, await listForLearning(deps, after));
  assertEquals(next.entries.find((e) => e.id === late.id)?.forwarding?.session.clientPort, 40005);
});
