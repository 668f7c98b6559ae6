import { assertEquals, assertMatch } from "../_assert.ts";
import { probeSsh, reachSsh } from "../../src/ssh/probe.ts";
import { MSG, parseKexInit } from "../../src/ssh/wire.ts";
import { fakeKeyBlob, type FakeServerOptions, fakeSshServer } from "../_fakes/ssh_server.ts";

const OPTIONS = { hostKeyAlgorithms: ["ssh-ed25519"], timeoutMs: 2000, label: "198.18.2.2:22" };

async function probeFake(server: FakeServerOptions, options = OPTIONS) {
  const conn = fakeSshServer(server);
  const outcome = await probeSsh(() => Promise.resolve(conn), options);
  return { outcome, conn };
}

Deno.test("the probe returns the server's host key and offers only the pinned types", async () => {
  const key = fakeKeyBlob("ssh-ed25519", 42);
  const { outcome, conn } = await probeFake({ hostKey: key });
  assertEquals(outcome, { kind: "answered", banner: "SSH-2.0-OpenSSH_9.2p1", hostKey: key });
  const sent = conn.clientPayloads();
  assertEquals(sent.map((p) => p[0]), [MSG.kexinit, MSG.kexEcdhInit, MSG.disconnect]);
  assertEquals(parseKexInit(sent[0]!).hostKey, ["ssh-ed25519"]);
  assertEquals(conn.closed, true);
});

Deno.test("the probe reads split packets, a preamble, and skips IGNORE messages", async () => {
  const key = fakeKeyBlob("ssh-ed25519", 5);
  const { outcome } = await probeFake({
    hostKey: key,
    trickle: true,
    preamble: ["Authorized use only"],
    beforeKexInit: [Uint8Array.of(MSG.ignore, 0, 0, 0, 0)],
  });
  assertEquals(outcome.kind === "answered" && outcome.hostKey, key);
});

Deno.test("the probe uses an ECDH P-256 key when the server has no curve25519", async () => {
  const { outcome, conn } = await probeFake({ kex: ["ecdh-sha2-nistp256"] });
  assertEquals(outcome.kind, "answered");
  const init = conn.clientPayloads()[1]!;
  // string Q_C: uint32 length 65, then an uncompressed point (0x04 …).
  assertEquals([init[0], init[4], init[5]], [MSG.kexEcdhInit, 65, 4]);
});

Deno.test("a server without any pinned key type answers with what it offers", async () => {
  const { outcome } = await probeFake({ hostKeyAlgorithms: ["ssh-rsa", "rsa-sha2-512"] });
  assertEquals(outcome, {
    kind: "answered",
    banner: "SSH-2.0-OpenSSH_9.2p1",
    offered: ["ssh-rsa", "rsa-sha2-512"],
  });
});

Deno.test("no key exchange in common: the server answered, the key is left to ssh", async () => {
  const { outcome } = await probeFake({ kex: ["diffie-hellman-group14-sha256"] });
  assertEquals(outcome, { kind: "answered", banner: "SSH-2.0-OpenSSH_9.2p1" });
});

Deno.test("failures are classified so the session knows whether to fail over", async () => {
  const refused = await probeSsh(
    () => Promise.reject(new Deno.errors.ConnectionRefused("Connection refused (os error 111)")),
    OPTIONS,
  );
  assertEquals(refused, {
    kind: "failed",
    reason: "unreachable",
    message: "Cannot connect to 198.18.2.2:22: connection refused",
  });
  const silent = await probeFake({ silent: true }, { ...OPTIONS, timeoutMs: 50 });
  assertEquals(silent.outcome, {
    kind: "failed",
    reason: "timeout",
    message: "No SSH answer from 198.18.2.2:22 within 0.1 s",
  });
  assertEquals(silent.conn.closed, true);
  const hungDial = await probeSsh(() => new Promise(() => {}), { ...OPTIONS, timeoutMs: 50 });
  assertEquals(hungDial.kind === "failed" && hungDial.reason, "timeout");
  const closed = await probeFake({ closeAfterBanner: true });
  assertEquals(closed.outcome.kind === "failed" && closed.outcome.reason, "protocol");
  assertMatch(
    closed.outcome.kind === "failed" ? closed.outcome.message : "",
    /closed the connection before its key exchange offer/,
  );
  // Not an SSH server: its lines are taken as a preamble until the deadline.
  const http = await probeFake({ banner: "HTTP/1.1 400 Bad Request" }, {
    ...OPTIONS,
    timeoutMs: 50,
  });
  assertEquals(http.outcome.kind === "failed" && http.outcome.reason, "timeout");
  const bye = Uint8Array.of(MSG.disconnect, 0, 0, 0, 2, 0, 0, 0, 3, 0x62, 0x79, 0x65, 0, 0, 0, 0);
  const disconnected = await probeFake({ beforeKexInit: [bye] });
  assertEquals(disconnected.outcome, {
    kind: "failed",
    reason: "protocol",
    message: "SSH with 198.18.2.2:22 failed: the server disconnected: bye (reason 2)",
  });
});

Deno.test("reachSsh() only connects: nothing is sent, failures read as the probe's", async () => {
  const conn = fakeSshServer({});
  assertEquals(await reachSsh(() => Promise.resolve(conn), OPTIONS), undefined);
  assertEquals([conn.closed, conn.written.length], [true, 0]);
  assertEquals(
    await reachSsh(
      () => Promise.reject(new Deno.errors.ConnectionRefused("Connection refused (os error 111)")),
      OPTIONS,
    ),
    {
      kind: "failed",
      reason: "unreachable",
      message: "Cannot connect to 198.18.2.2:22: connection refused",
    },
  );
  const hung = await reachSsh(() => new Promise(() => {}), { ...OPTIONS, timeoutMs: 50 });
  assertEquals(hung, {
    kind: "failed",
    reason: "timeout",
    message: "No connection to 198.18.2.2:22 within 0.1 s",
  });
});
