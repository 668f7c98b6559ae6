/**
 * The ctnetlink lookup's own logic over fake system calls: answers to earlier lookups skipped, a
 * kernel slow to answer, and a socket closed while a lookup waits (its number may be another
 * file's by then). The real kernel's answers: tests/e2e/conntrack_socket_test.ts.
 */
import { assertEquals, assertRejects } from "../_assert.ts";
import { conntrackSocket, type NetlinkCalls } from "../../src/platform/conntrack_socket.ts";
import { parseIp } from "../../src/net/ip.ts";

const EAGAIN = 11;
const TUPLE = {
  client: { ip: parseIp("198.18.1.2")!, port: 50123 },
  proxy: { ip: parseIp("198.18.1.1")!, port: 22 },
};

/** An error answer (NLMSG_ERROR) to `seq`: ENOENT, conntrack knows no such connection. */
function notFound(seq: number): Uint8Array {
  const out = new Uint8Array(36);
  const view = new DataView(out.buffer);
  view.setUint32(0, out.length, true);
  view.setUint16(4, 2, true);
  view.setUint32(8, seq, true);
  view.setInt32(16, -2, true);
  return out;
}

/** Fake calls: each read takes the next of `reads` (a datagram, or EAGAIN); every call logged. */
function fakeCalls(reads: Array<Uint8Array | "EAGAIN">, onRead: () => void = () => {}) {
  const log: string[] = [];
  let last = 0;
  let sent = 0;
  const calls: NetlinkCalls = {
    open: () => (log.push("open"), 40),
    write: (fd, bytes) => {
      sent = new DataView(bytes.buffer).getUint32(8, true);
      log.push(`write ${fd} seq ${sent}`);
      return bytes.length;
    },
    read: (fd, into) => {
      log.push(`read ${fd}`);
      onRead();
      const next = reads.shift() ?? "EAGAIN";
      if (next === "EAGAIN") {
        last = EAGAIN;
        return -1;
      }
      into.set(next);
      return next.length;
    },
    close: (fd) => void log.push(`close ${fd}`),
    errno: () => last,
  };
  return { calls, log, sent: () => sent };
}

Deno.test("a lookup skips answers to earlier lookups and waits out a kernel slow to answer", async () => {
  const fake = fakeCalls(["EAGAIN", notFound(99), notFound(1)]);
  const socket = conntrackSocket(fake.calls);
  assertEquals(await socket.connection(TUPLE), undefined);
  assertEquals(fake.log, ["open", "write 40 seq 1", "read 40", "read 40", "read 40"]);
  socket.close();
  assertEquals(fake.log.at(-1), "close 40");
});

Deno.test("a lookup gives up after a few waits, and the next one still reads its own answer", async () => {
  const reads: Array<Uint8Array | "EAGAIN"> = [];
  const fake = fakeCalls(reads);
  const socket = conntrackSocket(fake.calls);
  await assertRejects(() => socket.connection(TUPLE), Error, "did not answer");
  assertEquals(fake.log.filter((l) => l.startsWith("read")).length, 5);
  // The late answer to the first lookup comes before the second's own, and is skipped.
  reads.push(notFound(1), notFound(2));
  fake.log.length = 0;
  assertEquals(await socket.connection(TUPLE), undefined);
  assertEquals(fake.log, ["write 40 seq 2", "read 40", "read 40"]);
  socket.close();
});

Deno.test("a socket closed while a lookup waits is never read again by that lookup", async () => {
  const stopping = { close: () => {} };
  let reads = 0;
  const fake = fakeCalls(["EAGAIN", notFound(1)], () => {
    // The service stops during the first wait: the number 40 may be another file's after this.
    if (++reads === 1) queueMicrotask(() => stopping.close());
  });
  const socket = conntrackSocket(fake.calls);
  stopping.close = () => socket.close();
  await assertRejects(() => socket.connection(TUPLE), Error, "closed");
  assertEquals(fake.log, ["open", "write 40 seq 1", "read 40", "close 40"]);
  await assertRejects(() => socket.connection(TUPLE), Error, "closed");
  assertEquals(fake.log.length, 4, "a lookup after close touched the socket");
});
