import { assertEquals, assertThrows } from "../_assert.ts";
import {
  Incoming,
  kexInitPayload,
  negotiate,
  packet,
  parseEcdhReply,
  parseKexInit,
  sshString,
  WireError,
} from "../../src/ssh/wire.ts";

const zeros = (n: number) => new Uint8Array(n);
const enc = new TextEncoder();

Deno.test("packet() pads to a multiple of 8 with at least 4 bytes, as RFC 4253 §6 requires", () => {
  for (let size = 0; size < 20; size++) {
    const bytes = packet(new Uint8Array(size).fill(9), zeros);
    const length = new DataView(bytes.buffer).getUint32(0);
    const padding = bytes[4] as number;
    assertEquals([bytes.length % 8, padding >= 4, length + 4 === bytes.length], [0, true, true]);
    assertEquals(length - padding - 1, size);
  }
});

Deno.test("a KEXINIT survives a round trip through the packet reader", () => {
  const payload = kexInitPayload({
    kex: ["curve25519-sha256", "ecdh-sha2-nistp256"],
    hostKey: ["ssh-ed25519"],
    ciphers: ["aes128-ctr"],
    macs: ["hmac-sha2-256"],
  }, new Uint8Array(16).fill(1));
  const incoming = new Incoming();
  incoming.push(enc.encode("SSH-2.0-test\r\n"));
  incoming.push(packet(payload, zeros));
  assertEquals(incoming.banner(), "SSH-2.0-test");
  const received = incoming.payload();
  assertEquals(received, payload);
  assertEquals(parseKexInit(received!), {
    kex: ["curve25519-sha256", "ecdh-sha2-nistp256"],
    hostKey: ["ssh-ed25519"],
  });
  assertEquals(incoming.payload(), undefined);
});

Deno.test("Incoming skips lines before the version line and waits for split packets", () => {
  const incoming = new Incoming();
  incoming.push(enc.encode("Welcome\r\nPlease wait\nSSH-2.0-Open"));
  assertEquals(incoming.banner(), undefined);
  incoming.push(enc.encode("SSH_9\r\n"));
  assertEquals(incoming.banner(), "SSH-2.0-OpenSSH_9");
  const bytes = packet(Uint8Array.of(2, 0, 0, 0, 0), zeros);
  incoming.push(bytes.subarray(0, 7));
  assertEquals(incoming.payload(), undefined);
  incoming.push(bytes.subarray(7));
  assertEquals(incoming.payload(), Uint8Array.of(2, 0, 0, 0, 0));
});

Deno.test("Incoming refuses SSH-1, endless preambles and absurd packet lengths", () => {
  const v1 = new Incoming();
  v1.push(enc.encode("SSH-1.5-old\r\n"));
  assertThrows(() => v1.banner(), WireError, "Unsupported SSH version");
  const chatty = new Incoming();
  chatty.push(enc.encode("hello\n".repeat(60)));
  assertThrows(() => chatty.banner(), WireError, "No SSH version line");
  const noNewline = new Incoming();
  noNewline.push(new Uint8Array(9000).fill(0x41));
  assertThrows(() => noNewline.banner(), WireError, "No SSH version line");
  const huge = new Incoming();
  huge.push(enc.encode("SSH-2.0-x\n"));
  huge.banner();
  huge.push(Uint8Array.of(0x7f, 0xff, 0xff, 0xff, 4));
  assertThrows(() => huge.payload(), WireError, "Malformed SSH packet");
});

Deno.test("parseEcdhReply() returns the host key and refuses truncated replies", () => {
  const key = sshString("ssh-ed25519");
  const reply = Uint8Array.of(
    31,
    ...sshString(key),
    ...sshString(zeros(32)),
    ...sshString(zeros(8)),
  );
  assertEquals(parseEcdhReply(reply).hostKey, key);
  assertThrows(() => parseEcdhReply(reply.subarray(0, 10)), WireError, "Truncated");
  assertThrows(() => parseEcdhReply(Uint8Array.of(20)), WireError, "Expected the key exchange");
});

Deno.test("negotiate() takes the client's first choice that the server offers", () => {
  assertEquals(negotiate(["a", "b", "c"], ["c", "b"]), "b");
  assertEquals(negotiate(["a"], ["b"]), undefined);
});
