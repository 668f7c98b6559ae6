import { assertEquals, assertMatch, assertRejects } from "../_assert.ts";
import { fakeDrainFile } from "../_fakes/drain.ts";
import { type DnatPlatform, runDnat } from "../../src/dnat/run.ts";
import { dnatMode } from "../../src/dnat/command.ts";
import { dnatArgv, parseAddReply } from "../../src/dnat/contract.ts";
import { NotAuthorizedError } from "../../src/dnat/errors.ts";
import { createFakeFs } from "../_fakes/fs.ts";
import { fakeDnatDeps } from "../_fakes/dnat.ts";
import { recordLogs } from "../_fakes/logs.ts";
import { captureOutput } from "../_fakes/output.ts";
import { parseInline } from "../config/_load.ts";
import { parseIp } from "../../src/net/ip.ts";
import { endpoint, target } from "./_build.ts";
import { fakeProc, hex4 } from "../_fakes/proc.ts";
import { createBalancer } from "../../src/balancer/balancer.ts";
import { memoryJson } from "../../src/balancer/shared_json.ts";

const SYSTEM_CONFIG = `<server><state_directory>/s</state_directory><rproxy><enabled>true</enabled>
<rules><rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/k</keyfile>
<src_port_filtering>false</src_port_filtering></rule></rules></rproxy></server>`;
// What a caller might point --config at: a rule that would allow any server.
const CALLERS_CONFIG = SYSTEM_CONFIG.replace("198.18.2.2", "198.18.2.99");

const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";

/**
 * The process tree of a sudo call from a session: sshd's monitor 600 holds client 198.18.1.2's
 * connection; session 700 of uid 1001 ran sudo 800, which runs us (801).
 */
const PROC = fakeProc([
  { pid: 1, ppid: 0, uid: 0, comm: "systemd" },
  { pid: 600, ppid: 1, uid: 0, comm: "sshd", sockets: [4242] },
  { pid: 601, ppid: 600, uid: 1001, comm: "sshd" },
  { pid: 700, ppid: 601, uid: 1001, comm: "xferproxy", startTicks: 100 },
  { pid: 800, ppid: 700, uid: 1001, euid: 0, comm: "sudo" },
  { pid: 801, ppid: 800, uid: 0, comm: "deno" },
], [{ local: hex4("198.18.1.1", 22), remote: hex4("198.18.1.2", 48686), inode: 4242 }]);

/** A platform over the fake DNAT core deps; `events` records the service's life. */
function fakePlatform() {
  const fakes = fakeDnatDeps(parseInline(SYSTEM_CONFIG).config!);
  const events: string[] = [];
  const bounds: string[] = [];
  const logs = recordLogs(events);
  const stop = new AbortController();
  const platform: DnatPlatform = {
    fs: createFakeFs({
      "/etc/xferproxy/aspera.conf": CALLERS_CONFIG,
      "/a.conf": SYSTEM_CONFIG,
      "/evil.conf": CALLERS_CONFIG,
    }),
    trustedFs: createFakeFs({ "/etc/xferproxy/aspera.conf": SYSTEM_CONFIG }),
    openLogs: (service) => (directory) => {
      events.push(`stderr ${service}`);
      return logs.open(directory);
    },
    prepareDirectory: (state) => Promise.resolve(`${state}/dnat`),
    dnatDeps: (config, _dir, log) => Promise.resolve({ ...fakes.deps, config, log }),
    proc: () => PROC,
    pid: 801,
    newId: () => ID,
    drain: fakeDrainFile(),
    deadline: (ms, line) => {
      bounds.push(`deadline ${ms} ${line.split(";")[0]}`);
      return () => void bounds.push("disarmed");
    },
    serviceHost: () => {
      events.push("service host");
      return {
        stop: stop.signal,
        heartbeat: () => Promise.resolve(void stop.abort()),
        enableAccounting: () => Promise.resolve(false),
        proc: PROC,
        exits: { watch: () => Promise.resolve(undefined), release() {} },
        balancer: createBalancer(memoryJson(), Date.now),
        reachable: () => Promise.resolve(true),
        deciding: {
          probe: () => Promise.reject(new Error("no probe here")),
          reach: () => Promise.reject(new Error("no connection here")),
          userId: () => Promise.resolve(undefined),
          isExecutable: () => true,
          fileIdentity: () => Promise.resolve(undefined),
        },
        sshCounters: () => Promise.resolve(undefined),
        followFlows: () => ({ live: () => false, take: () => [] }),
        listen: (path, group) => Promise.resolve(void events.push(`listen ${path} ${group}`)),
        logLinesLost: () => 0,
        releaseMemory: () => {
          events.push("memory released");
          return Promise.resolve(0);
        },
        serveStatus: (endpoint) =>
          Promise.resolve(void events.push(`status ${endpoint.ip.text}:${endpoint.port}`)),
        close: () => Promise.resolve(void events.push("service closed")),
      };
    },
  };
  return { platform, fakes, events, logs, bounds };
}

const SUDO = { SUDO_UID: "1001", SUDO_COMMAND: "/usr/bin/xferproxy dnat add --rule 1" };
const PROC_CLIENT = parseIp("198.18.1.2")!;
const PROC_PROXY = parseIp("198.18.1.1")!;

async function dnat(
  platform: DnatPlatform,
  argv: string[],
  env: Record<string, string> = {},
) {
  const output = captureOutput();
  const context = { output, self: "/usr/bin/xferproxy", env: (name: string) => env[name] };
  let error: unknown;
  const status = await runDnat(dnatMode.parse(argv), platform, context).catch((e) => {
    error = e;
    return undefined;
  });
  return { status, error, output };
}

Deno.test("dnat add as root installs what root names and answers with the issued id", async () => {
  const { platform, fakes, events } = fakePlatform();
  fakes.processes.running.set(77, { uid: 0, start: 1_000 });
  const request = {
    ...target(),
    named: { owner: 77, client: PROC_CLIENT, proxy: PROC_PROXY },
  };
  const { status, output } = await dnat(platform, [
    ...dnatArgv({ action: "add", request }).slice(1),
    "--config",
    "/a.conf",
  ]);
  assertEquals(status, 0);
  assertEquals(parseAddReply(output.stdout), {
    event: "installed",
    session: ID,
    proxy: "198.18.1.1:33001",
    server: "198.18.2.2:33001",
    filtering: false,
  });
  assertEquals([...fakes.backend.kernel.keys()], [ID]);
  assertEquals([events[0], events.at(-1)], ["stderr false", "close"]);
  // Root must name the session: there is no sshd connection behind root to read.
  const unnamed = await dnat(platform, [
    ...dnatArgv({ action: "add", request: target() }).slice(1),
  ]);
  assertEquals(parseAddReply(unnamed.output.stdout)?.event, "refused");
});

Deno.test("dnat add exits only once its purge of stale flows is done: the answer comes before it", async () => {
  const { platform, fakes } = fakePlatform();
  let purged = false;
  fakes.conntrack.purge = async (sessions) => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    purged = true;
    return sessions.map(() => ({ bytes: 0, packets: 0 }));
  };
  const { status, output } = await dnat(
    platform,
    dnatArgv({ action: "add", request: target() }).slice(1),
    SUDO,
  );
  assertEquals([status, parseAddReply(output.stdout)?.event, purged], [0, "installed", true]);
});

Deno.test("through sudo the session is whoever ran sudo, at the address of its sshd connection", async () => {
  const { platform, fakes } = fakePlatform();
  fakes.processes.running.set(700, { uid: 1001, start: 1_796_000_001_000 });
  const { status, output } = await dnat(
    platform,
    dnatArgv({ action: "add", request: target() }).slice(1),
    { ...SUDO, SUDO_USER: "alice" },
  );
  assertEquals(status, 0);
  assertEquals(parseAddReply(output.stdout)?.event, "installed");
  const [entry] = fakes.store.registry.entries;
  assertEquals(
    [entry?.owner.pid, entry?.uid, entry?.user, entry?.forwarding?.session.client.text],
    [700, 1001, "alice", "198.18.1.2"],
  );
  assertEquals([entry?.ssh?.client.port, entry?.ssh?.proxy.port], [48686, 22]);
});

Deno.test("through sudo nobody names the owner or the addresses", async () => {
  const { platform, fakes } = fakePlatform();
  // A caller claims another client's address for its forwarding.
  const forged = {
    ...target(),
    named: { owner: 700, client: PROC_PROXY, proxy: PROC_PROXY },
  };
  const { error, output } = await dnat(
    platform,
    dnatArgv({ action: "add", request: forged }).slice(1),
    SUDO,
  );
  assertEquals(error instanceof NotAuthorizedError, true);
  assertEquals(parseAddReply(output.stdout)?.event, "refused");
  assertEquals(fakes.backend.kernel.size, 0);
});

Deno.test("through sudo only the trusted system config counts; a refusal is a refused event", async () => {
  const { platform, fakes, logs } = fakePlatform();
  // Allowed by the config the caller would choose, not by the system's.
  const wrong = target({ server: endpoint("198.18.2.99:22") });
  const { status, error, output } = await dnat(
    platform,
    [...dnatArgv({ action: "add", request: wrong }).slice(1), "--config", "/evil.conf"],
    { ...SUDO, XFERPROXY_CONFIG: "/evil.conf" },
  );
  assertEquals(status, undefined);
  assertEquals(error instanceof NotAuthorizedError, true);
  assertEquals(parseAddReply(output.stdout)?.event, "refused");
  assertMatch((error as NotAuthorizedError).userMessage, /^dnat refused: /);
  assertMatch(logs.lines().join("\n"), /dnat add failed: /);
  assertEquals(fakes.backend.kernel.size, 0);
});

Deno.test("dnat serve refuses a sudo caller before anything runs", async () => {
  const { platform, events } = fakePlatform();
  const { error } = await dnat(platform, ["serve"], {
    SUDO_UID: "1001",
    SUDO_COMMAND: "/usr/bin/xferproxy dnat serve",
  });
  assertEquals(error instanceof NotAuthorizedError, true);
  assertEquals(events.includes("service host"), false);
});

Deno.test("dnat serve logs to stderr too, runs until stopped, then releases its host", async () => {
  const { platform, events, logs } = fakePlatform();
  const { status } = await dnat(platform, ["serve", "--config", "/a.conf"]);
  assertEquals(status, 0);
  assertEquals(events[0], "stderr true");
  assertEquals(events.includes("listen /run/xferproxy/dnat.sock xferproxy"), true);
  // Once, after it listens: the pages it needed to start are not needed again.
  assertEquals(events.filter((e) => e === "memory released").length, 1);
  assertEquals(
    events.indexOf("memory released") > events.indexOf("listen /run/xferproxy/dnat.sock xferproxy"),
    true,
  );
  assertMatch(logs.lines().join("\n"), /DNAT service started/);
  assertEquals(events.slice(-2), ["service closed", "close"]);
});

Deno.test("a failing dnat del still closes the log and is a user error", async () => {
  const { platform, events } = fakePlatform();
  const { error } = await dnat(platform, ["del", "--session", crypto.randomUUID()]);
  await assertRejects(() => Promise.reject(error), NotAuthorizedError, "no DNAT session");
  assertEquals(events.at(-1), "close");
});

Deno.test("dnat drain (root only) marks the node, add through sudo is refused, undrain takes sessions again", async () => {
  const { platform, fakes, logs } = fakePlatform();
  const drain = platform.drain as ReturnType<typeof fakeDrainFile>;
  // A group member may run any dnat action through sudo: draining is not one of its own.
  const sudo = { SUDO_UID: "1001", SUDO_COMMAND: "/usr/bin/xferproxy dnat drain" };
  const member = await dnat(platform, ["drain"], sudo);
  assertEquals(member.error instanceof NotAuthorizedError, true);
  assertEquals(drain.marks.size, 0);
  const drained = await dnat(platform, ["drain", "--reason", "kernel update"]);
  assertEquals(drained.status, 0);
  assertMatch(drained.output.stdout, /^drained since .*: new reverse sessions are refused/);
  assertEquals([...drain.marks.values()].map((m) => m.reason), ["kernel update"]);
  assertMatch(logs.lines().join("\n"), /Drained: new reverse sessions are refused/);
  // Draining twice keeps the first mark's time.
  const since = [...drain.marks.values()][0]!.since;
  assertMatch((await dnat(platform, ["drain"])).output.stdout, /^already drained/);
  assertEquals([...drain.marks.values()][0]!.since, since);
  // The service down, a session's sudo call is refused too.
  fakes.processes.running.set(700, { uid: 1001, start: 1_796_000_001_000 });
  const add = await dnat(platform, dnatArgv({ action: "add", request: target() }).slice(1), SUDO);
  assertEquals(parseAddReply(add.output.stdout)?.event, "refused");
  assertEquals(fakes.backend.kernel.size, 0);
  const undrained = await dnat(platform, ["undrain"]);
  assertEquals([undrained.output.stdout, drain.marks.size], [
    "undrained: new sessions are taken again\n",
    0,
  ]);
  assertEquals((await dnat(platform, ["undrain"])).output.stdout, "not drained: nothing to do\n");
  const again = await dnat(platform, dnatArgv({ action: "add", request: target() }).slice(1), SUDO);
  assertEquals(parseAddReply(again.output.stdout)?.event, "installed");
});

Deno.test("every one-shot call is bounded in time and disarms its bound; the service is not bounded", async () => {
  const { platform, bounds } = fakePlatform();
  await dnat(platform, ["list"]);
  assertEquals(bounds, [
    "deadline 120000 xferproxy: dnat list did not finish within 120 s",
    "disarmed",
  ]);
  // A failing call disarms it too.
  await dnat(platform, ["del", "--session", crypto.randomUUID()]);
  assertEquals(bounds.filter((e) => e === "disarmed").length, 2);
  const served = fakePlatform();
  await dnat(served.platform, ["serve", "--config", "/a.conf"]);
  assertEquals(served.bounds, []);
});
