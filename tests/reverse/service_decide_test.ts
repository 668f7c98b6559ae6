/**
 * A session the DNAT service decides, through its session side and the
 * decision together (fakes for the kernel, the files and the servers): the
 * addresses and the account are the kernel's, the registration goes through
 * the same conversation a session process has, and the reply says what to
 * exec or how to exit.
 */
import { assertEquals, assertIncludes } from "../_assert.ts";
import { Buffer } from "node:buffer";
import {
  type ExitStatus,
  type SessionConnection,
  sessionService,
  type SessionServiceDeps,
} from "../../src/dnat/service_sessions.ts";
import { decideInService } from "../../src/reverse/service_decide.ts";
import {
  decideLine,
  type DecideReply,
  type FileAnswer,
  parseDecideReply,
  parseReadAsk,
  protocolLine,
} from "../../src/reverse/decide_protocol.ts";
import { createBalancer } from "../../src/balancer/balancer.ts";
import { memoryJson } from "../../src/balancer/shared_json.ts";
import { type ProcReader, startMs } from "../../src/dnat/procfs.ts";
import type { ProbeOutcome } from "../../src/ssh/probe.ts";
import { parseInline } from "../config/_load.ts";
import { fakeDnatDeps } from "../_fakes/dnat.ts";
import { fakeLogger } from "../_fakes/logger.ts";
import { fakeProc, SSHD_SESSION } from "../_fakes/proc.ts";
import { fakeKeyBlob } from "../_fakes/ssh_server.ts";

const KEY = fakeKeyBlob("ssh-ed25519", 1);
const PRIVATE_KEY = Deno.readTextFileSync(
  new URL("../fixtures/keys/openssh_plain", import.meta.url),
);
const config = parseInline(`<server><rproxy><enabled>true</enabled><known_hosts>/kh</known_hosts>
<rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/home/$(user)/id</keyfile><src_port_filtering>false</src_port_filtering></rule>
</rules></rproxy></server>`).config!;

const BOB = 1006;
const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";
/** The config file the service runs with; a session names it by device and inode. */
const OWN_CONFIG = { dev: 2049, ino: 77 };

const { boot: BOOT, uid: ALICE, tree: TREE, tcp: TCP } = SSHD_SESSION;

function setup(
  answer: ProbeOutcome = { kind: "answered", banner: "SSH-2.0-x", hostKey: KEY },
  proc: ProcReader = fakeProc(TREE, TCP, BOOT),
  newId: () => string = () => ID,
) {
  const fakes = fakeDnatDeps(config);
  const log = fakeLogger();
  const probed: string[] = [];
  const watched: number[] = [];
  const pidfds = { watched: [] as (number | undefined)[], released: [] as number[] };
  const exits = new Map<number, (status: ExitStatus) => void>();
  /** What the session process finds when the service asks it to read a file as itself. */
  const sessionFiles = new Map<string, FileAnswer>([
    ["/home/alice/id", { op: "file", text: PRIVATE_KEY, uid: ALICE, mode: 0o100600 }],
    ["/kh", {
      op: "file",
      text: `198.18.2.2 ssh-ed25519 ${Buffer.from(KEY).toString("base64")}\n`,
      uid: 0,
      mode: 0o100644,
    }],
  ]);
  const reads: string[] = [];
  const deps: SessionServiceDeps = {
    ...fakes.deps,
    log,
    proc,
    exits: {
      watch(owner, pidfd, onExit) {
        watched.push(owner.pid);
        pidfds.watched.push(pidfd);
        exits.set(owner.pid, onExit);
        return Promise.resolve({ cancel() {} });
      },
      release: (pidfd) => void pidfds.released.push(pidfd),
    },
    balancer: createBalancer(memoryJson(), () => fakes.clock.now()),
    reachable: () => Promise.resolve(true),
    sshCounters: () => Promise.resolve(undefined),
    newId,
    decide: (request, session) =>
      decideInService(request, session, {
        config,
        configFile: () => Promise.resolve(OWN_CONFIG),
        probe: (endpoint) => {
          probed.push(`${endpoint.ip.text}:${endpoint.port}`);
          return Promise.resolve(answer);
        },
        userId: (name) =>
          Promise.resolve(({ alice: ALICE, bob: BOB } as Record<string, number>)[name]),
        isExecutable: () => true,
        log,
      }),
  };
  fakes.processes.running.set(700, { uid: ALICE, start: startMs(BOOT, 300) });
  const service = sessionService(deps);
  /** Sends one decide request as process `pid` (uid `uid`); the reply and whether it closed. */
  const ask = async (
    env: Record<string, string>,
    options: { pid?: number; uid?: number; config?: typeof OWN_CONFIG; pidfd?: number } = {},
  ) => {
    const replies: DecideReply[] = [];
    let closed = false;
    const lines = [decideLine({ config: options.config ?? OWN_CONFIG, pty: false, env }).trimEnd()];
    const connection: SessionConnection = {
      peer: {
        pid: options.pid ?? 700,
        uid: options.uid ?? ALICE,
        ...(options.pidfd !== undefined ? { pidfd: options.pidfd } : {}),
      },
      nextLine: () => Promise.resolve(lines.shift()),
      send(line) {
        const read = parseReadAsk(line.trimEnd());
        if (!read) return void replies.push(parseDecideReply(line.trimEnd())!);
        reads.push(read.path);
        const answer = sessionFiles.get(read.path) ??
          { op: "file", error: "not_found", message: "No such file or directory" };
        lines.push(protocolLine(answer).trimEnd());
      },
      close: () => void (closed = true),
    };
    // An error serve() rejects with is the caller's to log (dnat/serve.ts); the reply is sent.
    const failed = await service.serve(connection).then(() => undefined, (error) => error);
    assertEquals(replies.length, 1);
    return { reply: replies[0]!, closed, failed };
  };
  return { ...fakes, log, probed, watched, pidfds, exits, ask, reads, sessionFiles };
}

const ALICE_ENV = {
  USER: "alice",
  HOME: "/home/alice",
  SSH_ORIGINAL_COMMAND: "ascp -S. -V1",
};

Deno.test("the service decides a FASP session from the kernel's word and registers it before replying", async () => {
  const bed = setup();
  const { reply, closed } = await bed.ask({
    USER: "alice",
    HOME: "/home/alice",
    SSH_ORIGINAL_COMMAND: "ascp -S. -V1",
  });
  assertEquals(closed, true);
  if (reply.op !== "decided" || !reply.handoff) throw new Error(JSON.stringify(reply));
  assertEquals(reply.tell, []);
  assertEquals(reply.handoff.argv.slice(-5), ["alice", "-T", "--", "198.18.2.2", "ascp -S. -V1"]);
  assertIncludes(reply.handoff.argv.join(" "), 'IdentityFile="/home/alice/id"');
  assertIncludes(reply.handoff.env.join(" "), "HOME=/home/alice");
  assertEquals(bed.probed, ["198.18.2.2:22"]);
  // The keyfile and known_hosts were read by the session itself, each once.
  assertEquals(bed.reads, ["/home/alice/id", "/kh"]);
  // Registered through the conversation: the owner and client are the kernel's, watched already.
  const [entry] = bed.store.registry.entries;
  assertEquals(
    [entry?.id, entry?.owner.pid, entry?.uid, entry?.forwarding?.session.client.text],
    [ID, 700, ALICE, "198.18.1.2"],
  );
  assertEquals(bed.watched, [700]);
  const handing = bed.log.records.find((r) => r.text.startsWith("Handing over"));
  assertEquals(
    [handing?.fields.pid, handing?.fields.decided_by, handing?.fields.udp],
    [700, "service", "forwarded"],
  );
  const received = bed.log.records.find((r) => r.text.startsWith("Received connection"));
  assertEquals(received?.fields.client, "198.18.1.2");
});

Deno.test("a decided session is looked up in /proc once: its registration reuses the decision's identity", async () => {
  const proc = fakeProc(TREE, TCP, BOOT);
  const bed = setup(undefined, proc);
  const { reply } = await bed.ask(ALICE_ENV);
  assertEquals(reply.op === "decided" && reply.handoff !== undefined, true);
  assertEquals(bed.store.registry.entries.length, 1);
  // The sshd connection's table (its TCP and TCP6 lists), read for one identity, not two.
  assertEquals(proc.reads.filter((path) => path.endsWith("/net/tcp")).length, 1);
});

Deno.test("a keyfile the session cannot read is its proxy key problem, as in its own process", async () => {
  const bed = setup();
  bed.sessionFiles.set("/home/alice/id", { op: "file", error: "denied", message: "EACCES" });
  const { reply } = await bed.ask(ALICE_ENV);
  assertEquals(reply, {
    op: "decided",
    tell: ["xferproxy: cannot log in to the internal server (proxy key problem)"],
    exit: 255,
  });
  assertEquals(
    bed.log.records.some((r) => r.text.includes("cannot read keyfile: permission denied")),
    true,
  );
  assertEquals([bed.probed, bed.store.registry.entries], [[], []]);
});

Deno.test("a keyfile others may read is refused as ssh would refuse it", async () => {
  const bed = setup();
  bed.sessionFiles.set("/home/alice/id", {
    op: "file",
    text: PRIVATE_KEY,
    uid: ALICE,
    mode: 0o100644,
  });
  const { reply } = await bed.ask(ALICE_ENV);
  assertEquals(reply.op === "decided" && reply.exit, 255);
  assertEquals(bed.log.records.some((r) => r.text.includes("chmod 600 /home/alice/id")), true);
});

Deno.test("a session given another config file decides itself: nothing is probed or registered", async () => {
  const bed = setup();
  const { reply } = await bed.ask(ALICE_ENV, { config: { dev: 2049, ino: 78 } });
  assertEquals(reply.op, "fallback");
  assertEquals([bed.probed, bed.store.registry.entries], [[], []]);
});

Deno.test("USER must name the account the kernel says connected", async () => {
  const bed = setup();
  const { reply } = await bed.ask({ ...ALICE_ENV, USER: "bob", HOME: "/home/bob" });
  assertEquals(reply, {
    op: "decided",
    tell: ["xferproxy: the session's USER is not its account"],
    exit: 255,
  });
  assertEquals([bed.probed, bed.store.registry.entries], [[], []]);
  assertEquals(
    bed.log.records.some((r) =>
      r.text.includes("USER bob is uid 1006, the session's process runs as uid 1005")
    ),
    true,
  );
});

Deno.test("a process no sshd started is refused with one line; nothing is decided", async () => {
  const bed = setup();
  const { reply } = await bed.ask(ALICE_ENV, { pid: 900 });
  if (reply.op !== "decided") throw new Error(JSON.stringify(reply));
  assertEquals([reply.exit, reply.tell.length], [255, 1]);
  assertIncludes(reply.tell[0]!, "xferproxy: ");
  assertEquals([bed.probed, bed.store.registry.entries], [[], []]);
});

Deno.test("a refused command is answered with its line and status, and registers nothing", async () => {
  const bed = setup();
  const { reply } = await bed.ask({ ...ALICE_ENV, SSH_ORIGINAL_COMMAND: "bash -i" });
  if (reply.op !== "decided") throw new Error(JSON.stringify(reply));
  assertEquals(reply.exit, 1);
  assertEquals(reply.tell.length, 1);
  assertEquals([bed.probed, bed.store.registry.entries, bed.watched], [[], [], []]);
});

Deno.test("an unreachable server: the session is told and ends with 255, nothing stays registered", async () => {
  const bed = setup({ kind: "failed", reason: "unreachable", message: "connection refused" });
  const { reply } = await bed.ask(ALICE_ENV);
  assertEquals(reply, {
    op: "decided",
    tell: ["xferproxy: internal server unavailable"],
    exit: 255,
  });
  assertEquals(bed.store.registry.entries, []);
});

Deno.test("a service without the decision tells the session to decide itself", async () => {
  const fakes = fakeDnatDeps(config);
  const service = sessionService({
    ...fakes.deps,
    proc: fakeProc(TREE, TCP, BOOT),
    exits: { watch: () => Promise.resolve(undefined), release() {} },
    balancer: createBalancer(memoryJson(), () => 0),
    reachable: () => Promise.resolve(true),
    sshCounters: () => Promise.resolve(undefined),
    newId: () => ID,
  });
  const replies: string[] = [];
  const lines = [decideLine({ config: OWN_CONFIG, pty: false, env: ALICE_ENV }).trimEnd()];
  await service.serve({
    peer: { pid: 700, uid: ALICE },
    nextLine: () => Promise.resolve(lines.shift()),
    send: (line) => void replies.push(line),
    close() {},
  });
  assertEquals(replies.map((l) => parseDecideReply(l)?.op), ["fallback"]);
});

Deno.test("a registration that fails unexpectedly costs that session its UDP, never the service", async () => {
  const bed = setup();
  bed.backend.add = () =>
    Promise.reject(new Error("iptables-restore: Resource temporarily unavailable"));
  const { reply, failed } = await bed.ask(ALICE_ENV);
  assertIncludes(String(failed), "Resource temporarily unavailable");
  if (reply.op !== "decided" || !reply.handoff) throw new Error(JSON.stringify(reply));
  assertEquals(reply.tell, ["xferproxy: UDP forwarding is unavailable; the SSH session continues"]);
  assertEquals(bed.store.registry.entries, []);
});

Deno.test("an unexpected error in the service's own conversation never stops the service", async () => {
  // The conversation's first step after the decision's admission fails as a bug would.
  const bed = setup(undefined, undefined, () => {
    throw new Error("no id to issue");
  });
  const { reply, failed } = await bed.ask(ALICE_ENV);
  assertEquals(reply, {
    op: "decided",
    tell: ["xferproxy: internal error; see the proxy log"],
    exit: 255,
  });
  assertIncludes(String(failed), "no id to issue");
  assertEquals(bed.store.registry.entries, []);
});

Deno.test("a decided session's pidfd goes to its watch once registered, and is closed otherwise", async () => {
  const registered = setup();
  await registered.ask(ALICE_ENV, { pidfd: 51 });
  assertEquals([registered.pidfds.watched, registered.pidfds.released], [[51], []]);
  const refused = setup();
  await refused.ask({ ...ALICE_ENV, SSH_ORIGINAL_COMMAND: "bash -i" }, { pidfd: 52 });
  assertEquals([refused.pidfds.watched, refused.pidfds.released], [[], [52]]);
  const fallback = setup();
  await fallback.ask(ALICE_ENV, { pidfd: 53, config: { dev: 2049, ino: 78 } });
  assertEquals(fallback.pidfds.released, [53]);
});
