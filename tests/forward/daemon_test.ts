/**
 * The forward daemon's lifetimes on fakes: what it reaps at start, what it
 * installs while serving, what it removes when stopped, and what a failed
 * start leaves behind (nothing).
 */
import { assertEquals, assertRejects } from "../_assert.ts";
import {
  type DaemonHost,
  DaemonStartError,
  HEAL_EVERY_MS,
  type Listener,
  runDaemon,
} from "../../src/forward/daemon.ts";
import { toInstalled } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import { ORPHANS_EVERY_MS } from "../../src/dnat/reconcile.ts";
import { fakeBackend, fakeConntrack, fakeProcesses, fakeStore } from "../_fakes/dnat.ts";
import { fakeLogger } from "../_fakes/logger.ts";
import { healRound } from "../../src/forward/daemon.ts";
import { dnatSession, markedFlow } from "../dnat/_build.ts";
import { parseInline } from "../config/_load.ts";

const CLIENT = parseIp("198.18.30.2")!;
const DAEMON = { pid: 500, start: 1_800_000_000 };

function config(server = "<enable_http>true</enable_http>", proxy = "") {
  return parseInline(
    `<server>${server}<proxy><enabled>true</enabled><port_range_low>5000</port_range_low>` +
      `<port_range_high>5001</port_range_high>${proxy}</proxy></server>`,
  ).config!;
}

/** A host whose sockets are handlers the test calls; `listen` may refuse a port. */
function bed(options: { refusePort?: number } = {}) {
  // A rule of an earlier daemon killed with SIGKILL, and one of a daemon still running.
  const dead = toInstalled(dnatSession({ owner: { pid: 400, start: 1 } }));
  const live = toInstalled(dnatSession({ owner: { pid: 401, start: 1 } }));
  const backend = fakeBackend([dead, live]);
  const processes = fakeProcesses();
  processes.running.set(401, { uid: 0, start: 1 });
  const stop = new AbortController();
  const events: string[] = [];
  let handler: ((request: Request, remote: typeof CLIENT) => Promise<Response>) | undefined;
  const host: DaemonHost = {
    serve(listen, handle) {
      if (listen.port === options.refusePort) {
        return Promise.reject(new Deno.errors.AddrInUse("address in use"));
      }
      events.push(`listen ${listen.hostname}:${listen.port}`);
      handler = handle;
      const listener: Listener = {
        shutdown: () => Promise.resolve(void events.push(`closed ${listen.port}`)),
      };
      return Promise.resolve(listener);
    },
    readFile: () => Promise.reject(new Error("no files")),
    defaultTls: () =>
      Promise.resolve({ cert: "C", key: "K", certPath: "/s/c", fingerprint: "AB", created: true }),
    localAddressFor: () => Promise.resolve(parseIp("198.18.30.1")),
    ownNetworks: () => Promise.resolve([]),
    portFree: () => Promise.resolve(true),
    resolve: () => Promise.resolve([]),
    loadUsers: () => Promise.resolve({ version: 1, users: new Map() }),
    forwardingEnabled: (family) => Promise.resolve(family === 4),
    processes,
    stop: stop.signal,
    owner: DAEMON,
    now: () => 1_000_000,
    newId: () => "00000000-0000-4000-8000-000000000001",
  };
  const store = fakeStore();
  const log = fakeLogger();
  const deps = { host, backend, conntrack: fakeConntrack(), store, log };
  const request = async (method: string, path: string, body?: unknown) => {
    if (!handler) throw new Error("the daemon does not listen");
    const response = await handler(
      new Request(`http://proxy${path}`, {
        method,
        headers: { authorization: "Basic " + btoa("alice:x") },
        ...(body ? { body: JSON.stringify(body) } : {}),
      }),
      CLIENT,
    );
    return { status: response.status, body: await response.json() };
  };
  const status = async (method: string, path: string) => {
    if (!handler) throw new Error("the daemon does not listen");
    const response = await handler(
      new Request(`http://proxy${path}`, {
        method,
        headers: { authorization: "Basic " + btoa("alice:x") },
      }),
      CLIENT,
    );
    await response.body?.cancel();
    return response.status;
  };
  return { host, deps, backend, store, log, stop, events, request, status, dead, live };
}

async function listening(events: string[]): Promise<void> {
  for (let i = 0; i < 100 && !events.some((e) => e.startsWith("listen")); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("the daemon reaps dead owners' rules, owns what it installs, removes it all when stopped", async () => {
  const b = bed();
  const daemon = runDaemon(config(), b.deps);
  await listening(b.events);
  // At start: the dead daemon's rule is gone, the running one's kept.
  assertEquals([...b.backend.kernel.keys()], [b.live.id]);
  const made = await b.request("POST", "/v1/sessions", { destination: "198.19.1.1" });
  assertEquals([made.status, made.body.port], [201, 5000]);
  assertEquals(b.backend.kernel.get(made.body.id)?.owner, DAEMON);
  // Recorded like a reverse session, as rule 0, TCP and UDP on the one proxy port.
  const [entry] = b.store.registry.entries;
  assertEquals([entry?.id, entry?.rule, entry?.owner, entry?.user], [
    made.body.id,
    0,
    DAEMON,
    "alice",
  ]);
  assertEquals(entry?.forwarding?.session.tcpServerPort, 22);
  b.stop.abort();
  await daemon;
  assertEquals([...b.backend.kernel.keys()], [b.live.id]);
  assertEquals(b.store.registry.entries, []);
  assertEquals(b.events, ["listen :::9091", "closed 9091"]);
});

Deno.test("the daemon sweeps at start the flows a killed daemon removed the rules of but never purged", async () => {
  const b = bed();
  // The running daemon's session (198.18.1.2, its rule still in the kernel) and one of no session.
  b.deps.conntrack.markedList.push(markedFlow(), markedFlow({ client: "198.18.1.7" }));
  const daemon = runDaemon(config(), b.deps);
  await listening(b.events);
  assertEquals(b.deps.conntrack.markedList.map((f) => f.src.text), ["198.18.1.2"]);
  assertEquals(
    b.log.records.filter((r) => r.text.includes("(no session)")).map((r) => r.text),
    [
      "Removed stale UDP forwarding flows between 198.18.1.7:40000 and 198.18.1.1:33001 (no session)",
    ],
  );
  b.stop.abort();
  await daemon;
});

Deno.test("a heal round sweeps flows of no session when asked to reap orphans, and only then", async () => {
  const b = bed();
  const daemon = runDaemon(config(), b.deps);
  await listening(b.events);
  const core = { ...b.deps, processes: b.host.processes, now: b.host.now };
  b.deps.conntrack.markedList.push(markedFlow({ client: "198.18.1.7" }));
  assertEquals(await healRound(core, DAEMON, { refresh: false }), []);
  assertEquals(b.deps.conntrack.markedList.length, 1);
  assertEquals(await healRound(core, DAEMON, { refresh: false, orphans: true }), []);
  assertEquals(b.deps.conntrack.markedList, []);
  b.stop.abort();
  await daemon;
});

Deno.test("the daemon's heal loop sweeps every orphan interval: a forward-only proxy may run no service", async () => {
  const b = bed();
  let now = 1_000_000;
  b.host.now = () => now;
  const daemon = runDaemon(config(), b.deps);
  await listening(b.events);
  b.deps.conntrack.markedList.push(markedFlow({ client: "198.18.1.7" }));
  // Heal rounds run every second; none is due to sweep yet.
  await new Promise((resolve) => setTimeout(resolve, HEAL_EVERY_MS * 1.5));
  assertEquals(b.deps.conntrack.markedList.length, 1);
  now += ORPHANS_EVERY_MS;
  for (let i = 0; i < 60 && b.deps.conntrack.markedList.length; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assertEquals(b.deps.conntrack.markedList, []);
  b.stop.abort();
  await daemon;
});

Deno.test("a start that cannot listen closes what it opened and installs nothing", async () => {
  const b = bed({ refusePort: 9092 });
  const https = config("<enable_http>true</enable_http><enable_https>true</enable_https>");
  await assertRejects(() => runDaemon(https, b.deps), DaemonStartError, "Cannot listen on 0.0.0.0");
  assertEquals(b.events, ["listen :::9091", "closed 9091"]);
  assertEquals([...b.backend.kernel.keys()], [b.live.id]);
});

Deno.test("a disabled forward proxy refuses to start before touching netfilter", async () => {
  const b = bed();
  const disabled = parseInline("<server><proxy><enabled>false</enabled></proxy></server>").config!;
  await assertRejects(() => runDaemon(disabled, b.deps), DaemonStartError, "disabled");
  assertEquals([b.backend.ops, b.events], [[], []]);
});

Deno.test("a heal round puts back what a firewall reload dropped", async () => {
  const b = bed();
  const daemon = runDaemon(config(), b.deps);
  await listening(b.events);
  const made = await b.request("POST", "/v1/sessions", { destination: "198.19.1.1" });
  b.backend.flush();
  assertEquals(
    await healRound({ ...b.deps, processes: b.host.processes, now: b.host.now }, DAEMON, {
      refresh: false,
    }),
    [],
  );
  assertEquals([...b.backend.kernel.keys()], [made.body.id]);
  assertEquals(
    b.log.records.some((r) => r.level === "warn" && r.text.includes(`session ${made.body.id}`)),
    true,
  );
  b.stop.abort();
  await daemon;
});

Deno.test("a removal the kernel refuses stays known, is logged, and is retried until it goes", async () => {
  const b = bed();
  const daemon = runDaemon(config(), b.deps);
  await listening(b.events);
  const made = await b.request("POST", "/v1/sessions", { destination: "198.19.1.1" });
  b.backend.failRemovals = 2;
  const deleted = await b.status("DELETE", `/v1/sessions/${made.body.id}`);
  assertEquals(deleted, 204);
  // Still in the kernel and in the registry, marked: never healed back, never forgotten.
  assertEquals(b.backend.kernel.has(made.body.id), true);
  assertEquals(b.store.registry.entries.map((e) => [e.id, e.removing]), [[
    made.body.id,
    1_000_000,
  ]]);
  assertEquals(
    b.log.records.filter((r) => r.level === "warn").map((r) => r.text),
    [
      `Removing the forwarding of session ${made.body.id} failed; retrying: Error: iptables-restore: Resource temporarily unavailable`,
    ],
  );
  const core = { ...b.deps, processes: b.host.processes, now: b.host.now };
  assertEquals(await healRound(core, DAEMON, { refresh: false }), [made.body.id]);
  assertEquals(b.backend.kernel.has(made.body.id), true);
  assertEquals(await healRound(core, DAEMON, { refresh: false }), []);
  assertEquals(b.backend.kernel.has(made.body.id), false);
  assertEquals(b.store.registry.entries, []);
  b.stop.abort();
  await daemon;
});
