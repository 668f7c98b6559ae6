/**
 * A scripted SSH server for the host key probe: it answers on a fake
 * connection with a version line, a KEXINIT and, once the client sends its
 * ECDH init, the reply carrying a host key; every behaviour can be bent to
 * test a failure.
 * @module
 */

import type { ByteConn } from "../../src/ssh/probe.ts";
import { concat, Incoming, kexInitPayload, MSG, packet, sshString } from "../../src/ssh/wire.ts";

/** How the fake server behaves. */
export interface FakeServerOptions {
  /** Lines before the version line, then the version line (default OpenSSH's). */
  readonly preamble?: readonly string[];
  readonly banner?: string;
  readonly kex?: readonly string[];
  readonly hostKeyAlgorithms?: readonly string[];
  /** The host key blob sent in the ECDH reply. */
  readonly hostKey?: Uint8Array;
  /** Sent before the KEXINIT (e.g. an IGNORE or a DISCONNECT payload). */
  readonly beforeKexInit?: readonly Uint8Array[];
  /** Close after the version line instead of sending a KEXINIT. */
  readonly closeAfterBanner?: boolean;
  /** Deliver bytes one at a time (split reads). */
  readonly trickle?: boolean;
  /** Never answer at all: reads hang until the connection is closed. */
  readonly silent?: boolean;
}

/** The fake connection plus what the client sent. */
export interface FakeServer extends ByteConn {
  readonly written: Uint8Array[];
  /** Payloads the client sent, after its version line. */
  clientPayloads(): Uint8Array[];
  readonly closed: boolean;
}

const zeros = (n: number) => new Uint8Array(n);
const enc = new TextEncoder();

/** A blob that looks like a public key of `type` (type string, then filler). */
export function fakeKeyBlob(type: string, fill: number): Uint8Array {
  return concat([sshString(type), sshString(new Uint8Array(32).fill(fill))]);
}

/** Creates the fake server's connection. */
export function fakeSshServer(options: FakeServerOptions = {}): FakeServer {
  const queue: Uint8Array[] = [];
  const waiting: Array<() => void> = [];
  const written: Uint8Array[] = [];
  let closed = false;
  let answeredEcdh = false;
  const send = (bytes: Uint8Array) => {
    if (options.trickle) { for (const b of bytes) queue.push(Uint8Array.of(b)); }
    else queue.push(bytes);
    waiting.splice(0).forEach((wake) => wake());
  };
  if (!options.silent) {
    const lines = [...(options.preamble ?? []), options.banner ?? "SSH-2.0-OpenSSH_9.2p1"];
    send(enc.encode(lines.map((l) => l + "\r\n").join("")));
    for (const extra of options.beforeKexInit ?? []) send(packet(extra, zeros));
    if (!options.closeAfterBanner) {
      send(packet(
        kexInitPayload({
          kex: options.kex ?? ["curve25519-sha256", "ecdh-sha2-nistp256"],
          hostKey: options.hostKeyAlgorithms ?? ["ssh-ed25519", "ecdsa-sha2-nistp256"],
          ciphers: ["aes128-ctr"],
          macs: ["hmac-sha2-256"],
        }, zeros(16)),
        zeros,
      ));
    }
  }
  const clientPayloads = () => {
    const incoming = new Incoming();
    incoming.push(concat(written));
    incoming.banner();
    const out: Uint8Array[] = [];
    for (let p = incoming.payload(); p; p = incoming.payload()) out.push(p);
    return out;
  };
  return {
    written,
    clientPayloads,
    get closed() {
      return closed;
    },
    async read(buffer) {
      while (queue.length === 0) {
        if (closed || options.closeAfterBanner && !options.silent) return null;
        await new Promise<void>((wake) => waiting.push(wake));
      }
      const chunk = queue.shift() as Uint8Array;
      const n = Math.min(chunk.length, buffer.length);
      buffer.set(chunk.subarray(0, n));
      if (n < chunk.length) queue.unshift(chunk.subarray(n));
      return n;
    },
    write(bytes) {
      if (closed) return Promise.reject(new Deno.errors.BrokenPipe("closed"));
      written.push(bytes.slice());
      if (!answeredEcdh && clientPayloads().some((p) => p[0] === MSG.kexEcdhInit)) {
        answeredEcdh = true;
        const reply = concat([
          Uint8Array.of(MSG.kexEcdhReply),
          sshString(options.hostKey ?? fakeKeyBlob("ssh-ed25519", 7)),
          sshString(new Uint8Array(32)),
          sshString(new Uint8Array(64)),
        ]);
        send(packet(reply, zeros));
      }
      return Promise.resolve(bytes.length);
    },
    close() {
      closed = true;
      waiting.splice(0).forEach((wake) => wake());
    },
  };
}
