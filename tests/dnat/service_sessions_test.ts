import { assertEquals, assertIncludes, assertMatch, assertRejects } from "../_assert.ts";
import {
  type ExitStatus,
  type SessionConnection,
  sessionService,
  type SessionServiceDeps,
} from "../../src/dnat/service_sessions.ts";
import { createBalancer } from "../../src/balancer/balancer.ts";
import { memoryJson } from "../../src/balancer/shared_json.ts";
import { parseReply, type ServiceReply } from "../../src/dnat/service_protocol.ts";
import type { Owner } from "../../src/dnat/types.ts";
import { startMs } from "../../src/dnat/procfs.ts";
import { parseInline } from "../config/_load.ts";
import { fakeDnatDeps } from "../_fakes/dnat.ts";
import { fakeLogger } from "../_fakes/logger.ts";
import { fakeProc, SSHD_SESSION } from "../_fakes/proc.ts";
import { registration } from "./_build.ts";
import { install } from "../../src/dnat/install.ts";
import { parseIp } from "../../src/net/ip.ts";
import {
  MAX_CONNECTIONS_PER_ACCOUNT,
  OVER_LIMIT_LOG_EVERY_MS,
} from "../../src/dnat/account_limit.ts";
import { serviceMetrics } from "../../src/dnat/service_metrics.ts";

const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule host_ip="198.18.1.1"><hosts><host>198.18.2.2</host><host>198.18.2.3</host></hosts><keyfile>/k</keyfile><src_port_filtering>false</src_port_filtering></rule>
</rules></rproxy></server>`).config!;

const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";

const { boot: BOOT, uid: USER, tree: TREE, tcp: TCP } = SSHD_SESSION;
const OWNER_START = startMs(BOOT, 300);

/** A connection that plays the session's lines and keeps the service's replies. */
function connection(pid: number, lines: readonly string[], uid = USER, pidfd?: number) {
  const queue = [...lines];
  const replies: ServiceReply[] = [];
  let closed = false;
  const conn: SessionConnection = {
    peer: { pid, uid, ...(pidfd !== undefined ? { pidfd } : {}) },
    nextLine: () => Promise.resolve(queue.shift()),
    send: (line) => void replies.push(parseReply(line.trimEnd()) as ServiceReply),
    close: () => void (closed = true),
  };
  return { conn, replies, closed: () => closed };
}

function setup(draining = () => false) {
  const fakes = fakeDnatDeps(config);
  const metrics = serviceMetrics({ version: "test", backend: "fake" }, 0);
  const log = fakeLogger();
  const watches = new Map<number, (status: ExitStatus) => void>();
  /** The peers' pidfds each watch was given, and those released. */
  const pidfds = { watched: [] as (number | undefined)[], released: [] as number[] };
  const reachable: string[] = [];
  let answers = true;
  /** While set, every check waits for it: a server slow to answer. */
  let slow: Promise<void> | undefined;
  const deps: SessionServiceDeps = {
    ...fakes.deps,
    log,
    proc: fakeProc(TREE, TCP, BOOT),
    exits: {
      watch(owner: Owner, pidfd, onExit) {
        pidfds.watched.push(pidfd);
        if (owner.pid === 999) return Promise.resolve(undefined); // already gone
        watches.set(owner.pid, onExit);
        return Promise.resolve({ cancel: () => void watches.delete(owner.pid) });
      },
      release: (pidfd) => void pidfds.released.push(pidfd),
    },
    balancer: createBalancer(memoryJson(), () => fakes.clock.now()),
    reachable: async (endpoint) => {
      reachable.push(`${endpoint.ip.text}:${endpoint.port}`);
      await slow;
      return answers;
    },
    sshCounters: () =>
      Promise.resolve({ in: { bytes: 5000, packets: 50 }, out: { bytes: 9000, packets: 60 } }),
    newId: () => ID,
    metrics,
    draining,
  };
  fakes.processes.running.set(700, { uid: USER, start: OWNER_START });
  const service = sessionService(deps);
  const ended = (pid: number, status: ExitStatus) => {
    fakes.processes.running.delete(pid);
    watches.get(pid)?.(status);
  };
  /** Waits until the fire-and-forget work (closing lines, checks) has run. */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 10));
  return {
    ...fakes,
    deps,
    log,
    metrics: () => metrics.registry.render(),
    service,
    watches,
    pidfds,
    ended,
    settle,
    reachable,
    unreachable: () => void (answers = false),
    /** Checks wait until the returned function is called. */
    slowChecks: () => {
      let answer = () => {};
      slow = new Promise<void>((resolve) => answer = resolve);
      return () => {
        slow = undefined;
        answer();
      };
    },
  };
}

const line = (value: unknown) => JSON.stringify(value);
const HELLO = line({ op: "hello" });
const register = (udp: boolean, host = 0) =>
  line({
    op: "register",
    rule: 1,
    host,
    server: host === 0 ? "198.18.2.2:22" : "198.18.2.3:22",
    udp,
    user: "alice",
  });

Deno.test("a FASP session: identified from the kernel, forwarding installed, gone the moment it exits", async () => {
  const bed = setup();
  const session = connection(700, [HELLO, line({ op: "pick", rule: 1 }), register(true)]);
  await bed.service.serve(session.conn);
  assertEquals(session.replies[0], { op: "hello", session: ID });
  assertEquals(session.replies[1], { op: "pick", order: [0, 1], skipped: [] });
  assertEquals(session.replies[2], {
    event: "installed",
    session: ID,
    proxy: "198.18.1.1:33001",
    server: "198.18.2.2:33001",
    filtering: false,
  });
  assertEquals(session.closed(), true);
  const [entry] = bed.store.registry.entries;
  // The owner and the client's address are the kernel's, not anything the session said.
  assertEquals(
    [entry?.owner, entry?.uid, entry?.forwarding?.session.client.text, entry?.ssh?.client.port],
    [{ pid: 700, start: OWNER_START }, USER, "198.18.1.2", 48686],
  );
  assertEquals([...bed.watches.keys()], [700]);
  bed.ended(700, { code: 0 });
  await bed.settle();
  assertEquals([bed.store.registry.entries, bed.backend.kernel.size], [[], 0]);
  const closing = bed.log.records.find((r) => r.text === "Connection closed");
  assertEquals(closing?.fields, {
    session: ID,
    user: "alice",
    rule: 1,
    upstream: "198.18.2.2:22",
    duration_ms: 0,
    exit: 0,
    client: "198.18.1.2:48686",
    ssh_bytes_in: 5000,
    ssh_bytes_out: 9000,
    udp_bytes: 2800,
    udp_packets: 40,
  });
});

Deno.test("an scp session registers for its closing line only, with the signal that ended it", async () => {
  const bed = setup();
  const session = connection(700, [HELLO, register(false)]);
  await bed.service.serve(session.conn);
  assertEquals(session.replies[1], { event: "registered", session: ID });
  assertEquals(bed.backend.ops, []);
  bed.ended(700, { signal: 9 });
  await bed.settle();
  const closing = bed.log.records.find((r) => r.text === "Connection closed");
  assertEquals([closing?.fields.exit, closing?.fields.udp_bytes], ["signal 9", undefined]);
});

Deno.test("a process no sshd started is refused at hello; nothing is issued or registered", async () => {
  const bed = setup();
  const stranger = connection(900, [HELLO, register(true)]);
  await bed.service.serve(stranger.conn);
  assertEquals(stranger.replies.length, 1);
  const [reply] = stranger.replies;
  assertEquals(reply && "event" in reply && reply.event, "refused");
  assertMatch(reply && "reason" in reply ? reply.reason : "", /not started by sshd/);
  assertEquals([stranger.closed(), bed.store.registry.entries], [true, []]);
  // A uid the kernel reports differently from the process's owner: replaced while connecting.
  const swapped = connection(700, [HELLO], 1006);
  await bed.service.serve(swapped.conn);
  assertMatch(JSON.stringify(swapped.replies), /changed hands/);
});

Deno.test("refusals at hello are logged once a minute per account, and every one counted", async () => {
  const bed = setup();
  // A group member's process no sshd started, connecting in a loop: a line each filled the log.
  for (let i = 0; i < 200; i++) await bed.service.serve(connection(900, [HELLO]).conn);
  await bed.service.serve(connection(700, [HELLO], 1006).conn);
  const logged = () =>
    bed.log.records.filter((r) => r.text.startsWith("Refused a connection from process"))
      .map((r) => r.fields?.uid);
  assertEquals(logged(), [USER, 1006]);
  assertMatch(bed.metrics(), /refused_total\{reason="not_authorized"\} 201/);
  bed.clock.advance(OVER_LIMIT_LOG_EVERY_MS);
  await bed.service.serve(connection(900, [HELLO]).conn);
  assertEquals(logged(), [USER, 1006, USER]);
});

Deno.test("anything but hello first, or a malformed request later, ends the conversation", async (t) => {
  const cases: Array<[string, string[], number]> = [
    ["a register before hello", [register(true)], 0],
    ["not JSON", ["ascp --mode=send"], 0],
    ["hello twice", [HELLO, HELLO], 2],
    ["a register naming a rule the config lacks", [
      HELLO,
      line({ ...JSON.parse(register(true)), rule: 9 }),
    ], 2],
  ];
  for (const [name, lines, replies] of cases) {
    await t.step(name, async () => {
      const bed = setup();
      const session = connection(700, lines);
      await bed.service.serve(session.conn);
      assertEquals([session.replies.length, session.closed()], [replies, true]);
      assertEquals([bed.store.registry.entries, bed.backend.kernel.size], [[], 0]);
    });
  }
});

Deno.test("a reported failure marks a server faulty only when the service cannot reach it either", async () => {
  const bed = setup();
  const failed = line({ op: "failed", rule: 1, host: 0, reason: "no answer" });
  await bed.service.serve(connection(700, [HELLO, failed]).conn);
  await bed.settle();
  assertEquals(bed.reachable, ["198.18.2.2:22"]);
  const next = connection(700, [HELLO, line({ op: "pick", rule: 1 })]);
  await bed.service.serve(next.conn);
  // The session's word alone marks nothing: no host is skipped.
  assertEquals(next.replies[1], { op: "pick", order: [0, 1], skipped: [] });
  bed.unreachable();
  await bed.service.serve(connection(700, [HELLO, failed]).conn);
  await bed.settle();
  const after = connection(700, [HELLO, line({ op: "pick", rule: 1 })]);
  await bed.service.serve(after.conn);
  const pick = after.replies[1];
  assertEquals(pick && "order" in pick ? [pick.order, pick.skipped.map((s) => s.index)] : [], [
    [1],
    [0],
  ]);
  assertEquals(
    bed.log.records.some((r) => /198\.18\.2\.2:22 is not responding, marked faulty/.test(r.text)),
    true,
  );
});

Deno.test("reports of a server that fail while the service checks it join that check", async () => {
  const bed = setup();
  const answer = bed.slowChecks();
  bed.unreachable();
  // A burst of sessions, or a group member reporting in a loop: each report used to open one
  // more connection to the server from the root service, without bound.
  const failed = line({ op: "failed", rule: 1, host: 0, reason: "no answer" });
  const other = line({ op: "failed", rule: 1, host: 1, reason: "no answer" });
  const reports = [HELLO, ...Array.from({ length: 500 }, () => failed), other, other];
  const looping = connection(700, reports);
  await bed.service.serve(looping.conn);
  await bed.service.serve(connection(700, [HELLO, failed]).conn);
  await bed.settle();
  assertEquals(looping.replies.length, reports.length, "every report is answered");
  assertEquals(bed.reachable, ["198.18.2.2:22", "198.18.2.3:22"], "one check per server");
  answer();
  await bed.settle();
  const marked = bed.log.records.filter((r) => /is not responding, marked faulty/.test(r.text));
  assertEquals(marked.length, 2, "one line per server");
  // Once the check is done, a new report is checked again.
  await bed.service.serve(connection(700, [HELLO, failed]).conn);
  await bed.settle();
  assertEquals(bed.reachable.length, 3);
});

Deno.test("adopt() watches sessions registered through sudo, and ends those already gone", async () => {
  const bed = setup();
  bed.processes.running.set(999, { uid: USER, start: 1_000 });
  const live = await install(bed.deps, registration(700, { start: OWNER_START }));
  const gone = await install(bed.deps, registration(999, { start: 1_000 }));
  await bed.service.adopt(bed.store.registry);
  await bed.settle();
  assertEquals([...bed.watches.keys()], [700]);
  assertEquals(bed.store.registry.entries.map((e) => e.id), [live.id]);
  const closing = bed.log.records.filter((r) => r.text === "Connection closed");
  assertEquals(closing.map((r) => [r.fields.session, r.fields.exit]), [[gone.id, "unknown"]]);
  // Adopting again watches nothing twice.
  await bed.service.adopt(bed.store.registry);
  assertEquals(bed.watches.size, 1);
});

Deno.test("closed() writes the closing line of sessions others removed and stops watching them", async () => {
  const bed = setup();
  await bed.service.serve(connection(700, [HELLO, register(false)]).conn);
  const [entry] = bed.store.registry.entries;
  bed.service.closed([{ entry: entry! }]);
  await bed.settle();
  assertEquals(bed.watches.size, 0);
  assertEquals(bed.log.records.filter((r) => r.text === "Connection closed").length, 1);
});

Deno.test("owners that end together are removed in one change, each with its closing line", async () => {
  const bed = setup();
  const pids = [701, 702, 703];
  for (const pid of pids) {
    bed.processes.running.set(pid, { uid: USER, start: 2_000 });
    await install(
      bed.deps,
      registration(pid, { start: 2_000, claimant: { client: parseIp(`198.18.1.${pid - 690}`)! } }),
    );
  }
  await bed.service.adopt(bed.store.registry);
  const removesBefore = bed.backend.ops.filter((o) => o.startsWith("remove")).length;
  for (const pid of pids) bed.ended(pid, { code: 0 });
  await bed.settle();
  const removes = bed.backend.ops.filter((o) => o.startsWith("remove")).slice(removesBefore);
  assertEquals(removes.length, 1);
  assertEquals(removes[0]!.split(",").length, 3);
  assertEquals(bed.store.registry.entries, []);
  assertEquals(bed.log.records.filter((r) => r.text === "Connection closed").length, 3);
});

Deno.test("a drained node says so at hello and registers nothing", async () => {
  const bed = setup(() => true);
  const session = connection(700, [HELLO, register(true)]);
  await bed.service.serve(session.conn);
  assertEquals(session.replies, [{ op: "hello", session: ID, draining: true }]);
  assertEquals(session.closed(), true);
  assertEquals([bed.store.registry.entries, bed.backend.ops], [[], []]);
  assertIncludes(bed.metrics(), 'xferproxy_reverse_sessions_refused_total{reason="draining"} 1\n');
});

Deno.test("hello is the one admission: a session admitted there registers though the node was drained since", async () => {
  // Not drained when it says hello; drained by the time it registers.
  let asked = 0;
  const bed = setup(() => asked++ > 0);
  const session = connection(700, [HELLO, line({ op: "pick", rule: 1 }), register(true)]);
  await bed.service.serve(session.conn);
  assertEquals(session.replies[0], { op: "hello", session: ID });
  assertEquals((session.replies[2] as { event?: string }).event, "installed");
  // It runs, so it is listed: an administrator waiting for dnat list to empty waits for it.
  assertEquals(bed.store.registry.entries.map((e) => e.id), [ID]);
});

Deno.test("metrics follow a FASP session from registration to its end", async () => {
  const bed = setup();
  const before = bed.metrics();
  assertEquals(before.includes("xferproxy_reverse_sessions_started_total{"), false);
  const session = connection(700, [HELLO, register(true)]);
  await bed.service.serve(session.conn);
  assertIncludes(
    bed.metrics(),
    'xferproxy_reverse_sessions_started_total{rule="1",udp="true"} 1\n',
  );
  assertIncludes(bed.metrics(), 'xferproxy_reverse_setup_duration_seconds_count{udp="true"} 1\n');
  bed.ended(700, { code: 0 });
  await bed.settle();
  const after = bed.metrics();
  for (
    const want of [
      'xferproxy_reverse_sessions_ended_total{rule="1",reason="exited"} 1\n',
      'xferproxy_reverse_udp_bytes_total{rule="1"} 2800\n',
      'xferproxy_reverse_udp_packets_total{rule="1"} 40\n',
      'xferproxy_reverse_ssh_bytes_total{direction="in"} 5000\n',
      'xferproxy_reverse_ssh_bytes_total{direction="out"} 9000\n',
    ]
  ) assertIncludes(after, want);
});

Deno.test("adopt() leaves the forward daemon's sessions to it: no watch per session on one daemon", async () => {
  const bed = setup();
  const live = await install(bed.deps, registration(700, { start: OWNER_START }));
  const forward = { ...live, id: "f0f0f0f0-0000-4000-8000-000000000001", rule: 0 };
  bed.store.registry = { entries: [...bed.store.registry.entries, forward] };
  await bed.service.adopt(bed.store.registry);
  await bed.settle();
  assertEquals(bed.service.watches(live.id), true);
  assertEquals(bed.service.watches(forward.id), false);
  assertEquals(bed.store.registry.entries.length, 2);
});

Deno.test("the peer's pidfd is closed with every connection that does not register; a watch takes it otherwise", async (t) => {
  const refusals: Array<[string, number, string[], number]> = [
    ["nothing sent", 700, [], 41],
    ["anything but hello first", 700, [register(true)], 42],
    ["refused at hello", 900, [HELLO], 43],
    ["a malformed request after hello", 700, [HELLO, "{"], 44],
    ["a decide the service does not make", 700, [
      line({ op: "decide", config: { dev: 1, ino: 2 }, pty: false, env: {} }),
    ], 45],
  ];
  for (const [name, pid, lines, pidfd] of refusals) {
    await t.step(name, async () => {
      const bed = setup();
      await bed.service.serve(connection(pid, lines, USER, pidfd).conn);
      assertEquals(bed.pidfds.released, [pidfd]);
    });
  }
  await t.step("registered: the watch has it, and it is not closed twice", async () => {
    const bed = setup();
    await bed.service.serve(connection(700, [HELLO, register(false)], USER, 46).conn);
    assertEquals([bed.pidfds.watched, bed.pidfds.released], [[46], []]);
  });
});

Deno.test("a connection is closed however serving it fails, not left open to the peer", async () => {
  // Anything unexpected on the way (here the drain mark cannot be read): the error is the
  // caller's to log, the socket is not left open for good with its descriptor and watch.
  const bed = setup(() => {
    throw new Error("cannot read the drain mark");
  });
  const session = connection(700, [HELLO], USER, 47);
  await assertRejects(() => bed.service.serve(session.conn), Error, "drain mark");
  assertEquals([session.closed(), bed.pidfds.released], [true, [47]]);
});

Deno.test("one account's connections past the limit are closed unread; other accounts are served", async () => {
  const bed = setup();
  // An account holding the limit: connections that never send their first line.
  const releases: Array<() => void> = [];
  const idle = (uid: number) => {
    let closed = false;
    const conn: SessionConnection = {
      peer: { pid: 800, uid },
      nextLine: () => new Promise((resolve) => releases.push(() => resolve(undefined))),
      send: () => {},
      close: () => void (closed = true),
    };
    return { conn, closed: () => closed };
  };
  const held = Array.from({ length: MAX_CONNECTIONS_PER_ACCOUNT }, () => idle(1500));
  const serving = held.map((h) => bed.service.serve(h.conn));
  await bed.settle();
  assertEquals(held.some((h) => h.closed()), false);
  // One more from that account: closed at once, its pidfd released, one line logged.
  const over = connection(800, [HELLO], 1500, 61);
  await bed.service.serve(over.conn);
  assertEquals([over.closed(), over.replies], [true, []]);
  assertEquals(bed.pidfds.released, [61]);
  await bed.service.serve(connection(800, [HELLO], 1500).conn);
  const warned = bed.log.records.filter((r) => r.text.includes("holds 1024 connections"));
  assertEquals(warned.length, 1, "one line for a burst of refusals");
  assertMatch(
    bed.metrics(),
    /xferproxy_reverse_sessions_refused_total\{reason="too_many_connections"\} 2/,
  );
  // Another account is served meanwhile.
  const other = connection(700, [HELLO, register(false)], USER, 62);
  await bed.service.serve(other.conn);
  assertEquals(other.replies.map((r) => "event" in r ? r.event : r.op), ["hello", "registered"]);
  // Once the account's connections end, it is served again.
  for (const release of releases) release();
  await Promise.all(serving);
  const again = connection(800, [HELLO], 1500);
  await bed.service.serve(again.conn);
  assertEquals(again.replies.length > 0, true, "the account is served again");
});
