/**
 * The pre-flight check of an internal server before a session is handed to
 * OpenSSH's `ssh`: TCP connect, the SSH version line, and a key exchange up
 * to the server's host key, all within the rule's connect_timeout. Nothing is
 * logged in: `ssh` does that, and verifies the key's signature. The probe
 * lets a session fail over when a server does not answer and refuse with a
 * clear message when its host key is not the pinned one, which `ssh` could
 * only report on the client's stream.
 * @module
 */

import {
  disconnectPayload,
  ecdhInitPayload,
  Incoming,
  kexInitPayload,
  type KexOffer,
  MSG,
  negotiate,
  packet,
  parseDisconnect,
  parseEcdhReply,
  parseKexInit,
  WireError,
} from "./wire.ts";

/** A connected byte stream (Deno.Conn fits). */
export interface ByteConn {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

/** What the probe found. */
export type ProbeOutcome =
  | {
    readonly kind: "answered";
    readonly banner: string;
    /** The host key blob; absent when no key exchange both sides know could be agreed. */
    readonly hostKey?: Uint8Array;
    /** The server's host key algorithms, when it offers none of the pinned types. */
    readonly offered?: readonly string[];
  }
  | {
    readonly kind: "failed";
    /** unreachable: no TCP connection; timeout: no answer in time; protocol: not a working SSH server. */
    readonly reason: "unreachable" | "timeout" | "protocol";
    readonly message: string;
  };

/** How to probe. */
export interface ProbeOptions {
  /** Host key algorithms to offer: the types known_hosts pins for this server. */
  readonly hostKeyAlgorithms: readonly string[];
  readonly timeoutMs: number;
  /** For messages: `ip:port`. */
  readonly label: string;
  /** Random bytes (cookie and padding). */
  readonly random?: (n: number) => Uint8Array;
  /** Only connect: the host still accepts on the port (see `reachSsh`). */
  readonly connectOnly?: boolean;
}

/** Key exchanges the probe can start, most common first. */
export const PROBE_KEX = [
  "curve25519-sha256",
  "curve25519-sha256@libssh.org",
  "ecdh-sha2-nistp256",
  "ecdh-sha2-nistp384",
] as const;

/** Offered only so the server can complete negotiation; never used, the probe stops before NEWKEYS. */
const CIPHERS = [
  "chacha20-poly1305@openssh.com",
  "aes128-gcm@openssh.com",
  "aes256-gcm@openssh.com",
  "aes128-ctr",
  "aes192-ctr",
  "aes256-ctr",
];
const MACS = [
  "hmac-sha2-256-etm@openssh.com",
  "hmac-sha2-512-etm@openssh.com",
  "hmac-sha2-256",
  "hmac-sha2-512",
  "hmac-sha1",
];

const VERSION_LINE = new TextEncoder().encode("SSH-2.0-xferproxy_probe\r\n");

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A fresh ephemeral public key for the chosen key exchange. */
async function ephemeralKey(kex: string, random: (n: number) => Uint8Array): Promise<Uint8Array> {
  // Any 32 bytes are an X25519 public key; the shared secret is never computed.
  if (kex.startsWith("curve25519")) return random(32);
  const namedCurve = kex === "ecdh-sha2-nistp384" ? "P-384" : "P-256";
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve }, true, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
}

/** Connects with `dial` and learns the server's host key; never throws. */
export async function probeSsh(
  dial: () => Promise<ByteConn>,
  options: ProbeOptions,
): Promise<ProbeOutcome> {
  const random = options.random ?? randomBytes;
  let conn: ByteConn | undefined;
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const close = () => {
    try {
      conn?.close();
    } catch { /* already closed */ }
  };
  const timeout = new Promise<ProbeOutcome>((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      close();
      const seconds = `${Math.round(options.timeoutMs / 100) / 10} s`;
      resolve({
        kind: "failed",
        reason: "timeout",
        message: options.connectOnly
          ? `No connection to ${options.label} within ${seconds}`
          : `No SSH answer from ${options.label} within ${seconds}`,
      });
    }, options.timeoutMs);
  });
  const attempt = (async (): Promise<ProbeOutcome> => {
    try {
      conn = await dial();
    } catch (error) {
      return {
        kind: "failed",
        reason: "unreachable",
        message: `Cannot connect to ${options.label}: ${describeSocketError(error)}`,
      };
    }
    // A connection that arrives after the deadline is closed at once.
    if (timedOut) close();
    if (options.connectOnly) return { kind: "answered", banner: "" };
    try {
      return await exchange(conn, options, random);
    } catch (error) {
      const detail = error instanceof WireError ? error.message : describeSocketError(error);
      return {
        kind: "failed",
        reason: "protocol",
        message: `SSH with ${options.label} failed: ${detail}`,
      };
    }
  })();
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
    close();
  }
}

/**
 * Only connects, within the probe's time and with its messages: undefined when the server's host
 * accepts on the port, else the failure a full probe would have reported for the connection.
 */
export async function reachSsh(
  dial: () => Promise<ByteConn>,
  options: Pick<ProbeOptions, "timeoutMs" | "label">,
): Promise<Extract<ProbeOutcome, { kind: "failed" }> | undefined> {
  const outcome = await probeSsh(dial, { ...options, hostKeyAlgorithms: [], connectOnly: true });
  return outcome.kind === "failed" ? outcome : undefined;
}

async function exchange(
  conn: ByteConn,
  options: ProbeOptions,
  random: (n: number) => Uint8Array,
): Promise<ProbeOutcome> {
  const offer: KexOffer = {
    kex: PROBE_KEX,
    hostKey: options.hostKeyAlgorithms,
    ciphers: CIPHERS,
    macs: MACS,
  };
  await writeAll(conn, VERSION_LINE);
  await writeAll(conn, packet(kexInitPayload(offer, random(16)), random));
  const incoming = new Incoming();
  const buffer = new Uint8Array(16384);
  const fill = async (what: string) => {
    const n = await conn.read(buffer);
    if (n === null) throw new WireError(`the server closed the connection before ${what}`);
    incoming.push(buffer.subarray(0, n));
  };
  let banner: string | undefined;
  while ((banner = incoming.banner()) === undefined) await fill("its version line");
  const next = async (what: string): Promise<Uint8Array> => {
    for (;;) {
      const payload = incoming.payload();
      if (payload === undefined) {
        await fill(what);
        continue;
      }
      const type = payload[0];
      if (type === MSG.ignore || type === MSG.debug) continue;
      if (type === MSG.disconnect) {
        throw new WireError(`the server disconnected: ${parseDisconnect(payload)}`);
      }
      return payload;
    }
  };
  const serverInit = parseKexInit(await next("its key exchange offer"));
  const kex = negotiate(PROBE_KEX, serverInit.kex);
  if (kex === undefined) return { kind: "answered", banner };
  if (negotiate(options.hostKeyAlgorithms, serverInit.hostKey) === undefined) {
    return { kind: "answered", banner, offered: serverInit.hostKey };
  }
  await writeAll(conn, packet(ecdhInitPayload(await ephemeralKey(kex, random)), random));
  const { hostKey } = parseEcdhReply(await next("its host key"));
  // A courtesy: the host key is in hand, whether the server hears the goodbye or not.
  await writeAll(conn, packet(disconnectPayload("host key probe done"), random)).catch(() => {});
  return { kind: "answered", banner, hostKey };
}

async function writeAll(conn: ByteConn, bytes: Uint8Array): Promise<void> {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
}

/** A socket error as a short phrase ("connection refused"), without stack or errno noise. */
export function describeSocketError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  if (error instanceof Deno.errors.NotConnected) return "not connected";
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\(os error \d+\)$/, "").toLowerCase();
}
