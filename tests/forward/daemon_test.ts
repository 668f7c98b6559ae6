/**
 * The forward daemon's lifetimes on fakes: what it reaps at start, what it
 * installs while serving, what it removes when stopped, and what a failed
 * start leaves behind (nothing).
 */
import { assertEquals, assertRejects } from "../_assert.ts";
import { getLogger } from "@logtape/logtape";
import {
  type DaemonHost,
  DaemonStartError,
  type Listener,
  runDaemon,
} from "../../src/forward/daemon.ts";
import { toInstalled } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import { fakeBackend, fakeConntrack, fakeProcesses } from "../_fakes/dnat.ts";
import { dnatSession } from "../dnat/_build.ts";
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
  const deps = { host, backend, conntrack: fakeConntrack(), log: getLogger(["xferproxy", "test"]) };
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
  return { host, deps, backend, stop, events, request, dead, live };
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
  b.stop.abort();
  await daemon;
  assertEquals([...b.backend.kernel.keys()], [b.live.id]);
  assertEquals(b.events, ["listen :::9091", "closed 9091"]);
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
