import { assertEquals, assertRejects } from "../_assert.ts";
import {
  ForwardingDisabledError,
  install,
  learnPorts,
  reapDead,
  reconcileKernel,
  removeEntries,
  SERIALISE_WAIT_MS,
} from "../../src/dnat/manager.ts";
import { NotAuthorizedError } from "../../src/dnat/authorize.ts";
import type { AddRequest } from "../../src/dnat/contract.ts";
import type { RegistryEntry } from "../../src/dnat/registry.ts";
import type { DnatSession } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import { parseInline } from "../config/_load.ts";
import { fakeDnatDeps } from "../_fakes/dnat.ts";
import { addRequest, endpoint, kernelSession } from "./_build.ts";

const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/k</keyfile></rule>
<rule host_ip="198.18.1.17"><hosts><host>198.18.2.2</host><host>198.18.2.3</host></hosts><keyfile>/k</keyfile></rule>
<rule host_ip="198.18.1.18"><hosts><host>198.18.2.2</host><host>198.18.2.3</host></hosts><keyfile>/k</keyfile><src_port_filtering>false</src_port_filtering></rule>
</rules></rproxy></server>`).config!;

const START = 1_800_000_000;

function request(owner: number, extra: Partial<AddRequest> = {}): AddRequest {
  return addRequest({ owner, ...extra });
}

/** A balanced rule's request: host 0 is server A, host 1 server B. */
function balanced(owner: number, host: 0 | 1, rule = 2): AddRequest {
  return request(owner, {
    proxy: parseIp(rule === 2 ? "198.18.1.17" : "198.18.1.18")!,
    rule,
    host,
    server: endpoint(host === 0 ? "198.18.2.2:22" : "198.18.2.3:22"),
  });
}

function setup() {
  const fakes = fakeDnatDeps(config);
  const run = (pid: number) => fakes.processes.running.set(pid, { uid: 1001, start: START });
  return { ...fakes, run };
}

Deno.test("install() records the session, installs it, and purges flows that came first", async () => {
  const { deps, backend, conntrack, store, processes, run } = setup();
  run(77);
  processes.connections.set(77, "198.18.1.2 50000 198.18.1.1 22");
  const { session, filtering } = await install(deps, request(77), { uid: 1001 });
  assertEquals(filtering, true);
  assertEquals([session.owner, session.proxyPort, session.server.text], [
    { pid: 77, start: START },
    33001,
    "198.18.2.2",
  ]);
  assertEquals(backend.ops, ["ensure 4", `add ${session.id.slice(0, 4)}:*`]);
  assertEquals(conntrack.purged, ["udp 198.18.1.2:*>33001"]);
  const [entry] = store.registry.entries;
  assertEquals([entry?.session.id, entry?.uid, entry?.rule, entry?.filtering], [
    session.id,
    1001,
    1,
    true,
  ]);
});

Deno.test("install() changes nothing when ip_forward is off or the owner is not running", async () => {
  const { deps, backend, store, run } = setup();
  await assertRejects(() => install(deps, request(77), {}), NotAuthorizedError, "not running");
  run(77);
  const off = { ...deps, forwardingEnabled: () => Promise.resolve(false) };
  await assertRejects(() => install(off, request(77), {}), ForwardingDisabledError, "ip_forward");
  assertEquals([backend.ops, store.registry.entries], [[], []]);
});

Deno.test("install() reaps sessions whose owner has ended, including a reused pid", async () => {
  const { deps, backend, store, processes, run } = setup();
  run(77);
  const first = await install(deps, request(77), {});
  processes.running.set(77, { uid: 1001, start: START + 5 }); // pid 77 is another process now
  run(78);
  await install(deps, request(78), {});
  assertEquals(store.registry.entries.map((e) => e.session.owner.pid), [78]);
  assertEquals(backend.ops.includes(`remove ${first.session.id.slice(0, 4)}:*`), true);
});

Deno.test("a client's second session to another server waits until the first has learned its port", async () => {
  const { deps, conntrack, store, clock, run } = setup();
  run(77);
  run(78);
  const toA = await install(deps, balanced(77, 0), {});
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
  const toB = await install(waiting, balanced(78, 1), {});
  assertEquals(sleeps, 3);
  const byId = new Map(store.registry.entries.map((e) => [e.session.id, e.session]));
  assertEquals(byId.get(toA.session.id)?.clientPort, 40000);
  assertEquals([toB.session.server.text, toB.session.proxyPort], ["198.18.2.3", 33001]);
});

Deno.test("install() gives up after the wait, and at once when the other session never learns", async () => {
  const { deps, run, clock } = setup();
  run(77);
  run(78);
  await install(deps, balanced(77, 0), {});
  const started = clock.now();
  await assertRejects(
    () => install(deps, balanced(78, 1), {}),
    NotAuthorizedError,
    "has not sent UDP within 10 s",
  );
  assertEquals(clock.now() - started >= SERIALISE_WAIT_MS, true);
  run(79);
  run(80);
  await install(deps, balanced(79, 0, 3), {});
  const before = clock.now();
  await assertRejects(
    () => install(deps, balanced(80, 1, 3), {}),
    NotAuthorizedError,
    "without source-port filtering",
  );
  assertEquals(clock.now(), before);
});

Deno.test("learnPorts() gives each session of a client its own flow port, then purges the rest", async () => {
  const { deps, backend, conntrack, store, run } = setup();
  run(77);
  run(78);
  const a = await install(deps, request(77), {});
  const b = await install(deps, request(78), {});
  conntrack.flowList.push(
    // Another client's flow to the same proxy port is never claimed.
    { src: "198.18.1.3", sport: 39999, dport: 33001 },
    { src: "198.18.1.2", sport: 40000, dport: 33001 },
    { src: "198.18.1.2", sport: 40001, dport: 33001 },
    { src: "198.18.1.2", sport: 40002, dport: 33001 },
  );
  const after = await learnPorts(deps, store.registry);
  const ports = new Map(after.entries.map((e) => [e.session.id, e.session.clientPort]));
  assertEquals([ports.get(a.session.id), ports.get(b.session.id)], [40000, 40001]);
  assertEquals(backend.ops.filter((o) => o.startsWith("replace")).length, 2);
  assertEquals(conntrack.purged.filter((p) => p.startsWith("other")), [
    "other 198.18.1.2:40002",
    "other 198.18.1.2:40002",
  ]);
  // Nothing left to learn: the same registry comes back.
  assertEquals(await learnPorts(deps, after), after);
});

Deno.test("reconcileKernel() puts back what a reload dropped and reaps orphans of ended owners", async () => {
  const { deps, backend, store, run } = setup();
  run(77);
  await install(deps, request(77), {});
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
  assertEquals(await reconcileKernel(deps, store.registry), { repaired: 1, reaped: 1 });
  assertEquals(
    [...backend.kernel.keys()].sort(),
    [daemons.id, store.registry.entries[0]!.session.id].sort(),
  );
  assertEquals(await reconcileKernel(deps, store.registry), { repaired: 0, reaped: 0 });
});

Deno.test("removeEntries() purges every source port of the session and drops it from the registry", async () => {
  const { deps, conntrack, store, run } = setup();
  run(77);
  const { session } = await install(deps, request(77), {});
  const narrowed: DnatSession = { ...session, clientPort: 40000 };
  const entry: RegistryEntry = { ...store.registry.entries[0]!, session: narrowed };
  const after = await removeEntries(deps, { entries: [entry] }, [entry], "session ended");
  assertEquals(after.entries, []);
  assertEquals(conntrack.purged.at(-1), "udp 198.18.1.2:*>33001");
});

Deno.test("reapDead() writes the registry only when a session ended", async () => {
  const { deps, store, processes, run } = setup();
  run(77);
  await install(deps, request(77), {});
  const writes = store.writes;
  assertEquals(await reapDead(deps, store.registry), store.registry);
  assertEquals(store.writes, writes);
  processes.running.delete(77);
  assertEquals((await reapDead(deps, store.registry)).entries, []);
  assertEquals(store.writes, writes + 1);
});
