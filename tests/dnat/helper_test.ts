import { assertEquals, assertRejects } from "../_assert.ts";
import { getLogger } from "@logtape/logtape";
import {
  addSession,
  ForwardingDisabledError,
  type HelperDeps,
  listSessions,
  reap,
} from "../../src/dnat/helper.ts";
import type { AddRequest } from "../../src/dnat/authorize.ts";
import type { InstalledSession } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import { parseInline } from "../config/_load.ts";
import { fakeBackend, fakeConntrack } from "../_fakes/dnat.ts";

const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/k</keyfile></rule>
<rule host_ip="198.18.1.17"><host>198.18.2.3</host><keyfile>/k</keyfile><src_port_filtering>false</src_port_filtering></rule>
</rules></rproxy></server>`).config!;

const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";
const REQUEST: AddRequest = {
  id: ID,
  owner: 77,
  client: parseIp("198.18.1.2")!,
  proxy: parseIp("198.18.1.1")!,
  rule: 1,
  host: 0,
};

function setup(initial: InstalledSession[] = [], live: number[] = [77]) {
  const backend = fakeBackend(initial);
  const conntrack = fakeConntrack();
  const events: Record<string, unknown>[] = [];
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let sleeps = 0;
  const onSleep: Array<(n: number) => void> = [];
  const printed: string[] = [];
  const deps: HelperDeps = {
    backend,
    conntrack,
    config,
    lock: (fn) => fn(),
    livePids: () => Promise.resolve(new Set(live)),
    forwardingEnabled: () => Promise.resolve(true),
    emit: (e) => void events.push(e),
    print: (t) => void printed.push(t),
    released: () => released,
    sleep: () => {
      sleeps++;
      onSleep.forEach((f) => f(sleeps));
      return Promise.resolve();
    },
    log: getLogger(["xferproxy", "test"]),
  };
  return { deps, backend, conntrack, events, release, onSleep, printed };
}

function other(id: string, owner: number, clientPort?: number): InstalledSession {
  return {
    id,
    owner,
    client: "198.18.1.2",
    ...(clientPort ? { clientPort } : {}),
    proxy: "198.18.1.1",
    proxyPort: 33001,
    server: "198.18.2.2",
    serverPort: 33001,
  };
}

Deno.test("addSession() installs address-only rules, purges stale flows and reports", async () => {
  const { deps, backend, conntrack, events } = setup();
  await addSession(deps, REQUEST, false);
  assertEquals(backend.ops, ["ensure 4", `add ${ID} *`]);
  assertEquals(conntrack.purged, ["198.18.1.2:*"]);
  assertEquals(events, [{
    event: "installed",
    proxy: "198.18.1.1:33001",
    server: "198.18.2.2:33001",
    filtering: true,
  }]);
});

Deno.test("addSession() refuses when ip_forward is off, changing nothing", async () => {
  const { deps, backend } = setup();
  await assertRejects(
    () => addSession({ ...deps, forwardingEnabled: () => Promise.resolve(false) }, REQUEST, false),
    ForwardingDisabledError,
    "net.ipv4.ip_forward is 0",
  );
  assertEquals(backend.ops, []);
});

Deno.test("addSession() --hold learns the first flow's port, narrows, and removes everything on release", async () => {
  const { deps, backend, conntrack, events, release, onSleep } = setup();
  onSleep.push((n) => {
    if (n === 3) conntrack.ports.push(60953, 60999); // the first flow, and a stray one
    if (n === 6) release();
  });
  await addSession(deps, REQUEST, true);
  assertEquals(backend.ops.filter((o) => !o.startsWith("refresh")), [
    "ensure 4",
    `add ${ID} *`,
    `replace ${ID} 60953`,
    `remove ${ID}`,
  ]);
  // While held, the session's kernel state is refreshed (nftables timeouts).
  assertEquals(backend.ops.includes(`refresh ${ID}`), true);
  assertEquals(events.map((e) => e.event), ["installed", "learned", "removed"]);
  assertEquals(events[1], { event: "learned", clientPort: 60953 });
  // Install purge, the stray port after narrowing, and every port at removal.
  assertEquals(conntrack.purged, ["198.18.1.2:*", "198.18.1.2:60999", "198.18.1.2:*"]);
  assertEquals(backend.sessions.size, 0);
});

Deno.test("learning skips ports other sessions of the client have claimed", async () => {
  const { deps, backend, conntrack, events, release, onSleep } = setup([
    other("11111111-1111-4111-8111-111111111111", 77, 50000),
  ]);
  conntrack.ports.push(50000, 50001);
  onSleep.push((n) => n === 2 && release());
  await addSession(deps, REQUEST, true);
  assertEquals(events[1], { event: "learned", clientPort: 50001 });
  assertEquals(backend.ops.includes(`replace ${ID} 50001`), true);
});

Deno.test("filtering off: no learning, the session stays address-only until released", async () => {
  const { deps, backend, events, release, onSleep } = setup();
  onSleep.push((n) => n === 1 && release());
  await addSession(deps, { ...REQUEST, rule: 2, proxy: parseIp("198.18.1.17")! }, true);
  assertEquals(events.map((e) => e.event), ["installed", "removed"]);
  assertEquals(backend.ops.filter((o) => o.startsWith("replace")), []);
});

Deno.test("reap() removes sessions whose owner is gone; --all removes all and the chains", async () => {
  const a = other("11111111-1111-4111-8111-111111111111", 10);
  const b = other("22222222-2222-4222-8222-222222222222", 20);
  const { deps, backend } = setup([a, b], [20]);
  assertEquals((await reap(deps, false)).map((s) => s.id), [a.id]);
  assertEquals([...backend.sessions.keys()], [b.id]);
  assertEquals((await reap(deps, true)).map((s) => s.id), [b.id]);
  assertEquals(backend.ops.at(-1), "teardown");
});

Deno.test("listSessions() prints each session and whether its owner lives", async () => {
  const { deps, printed } = setup([other(ID, 10, 60953)], []);
  await listSessions(deps, false);
  assertEquals(printed, [
    `${ID} owner 10 (gone)  198.18.1.2:60953 -> 198.18.1.1:33001 -> 198.18.2.2:33001\n`,
  ]);
});
