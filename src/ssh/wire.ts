/**
 * The clear-text part of the SSH transport (RFC 4253 §4-7, RFC 5656, RFC
 * 8731), as far as learning a server's host key: version lines, unencrypted
 * binary packets, KEXINIT and the ECDH reply. Pure: bytes in, values out.
 * @module
 */

/** Message numbers used by the probe. */
export const MSG = {
  disconnect: 1,
  ignore: 2,
  unimplemented: 3,
  debug: 4,
  kexinit: 20,
  kexEcdhInit: 30,
  kexEcdhReply: 31,
} as const;

/** Largest packet we accept before keys are exchanged (RFC 4253 §6.1 requires 35000). */
export const MAX_PACKET = 35000;

/** Bytes that are not a valid SSH exchange. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function uint32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** The parts, one after the other. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** An SSH `string`: uint32 length, then the bytes. */
export function sshString(value: Uint8Array | string): Uint8Array {
  const bytes = typeof value === "string" ? encoder.encode(value) : value;
  return concat([uint32(bytes.length), bytes]);
}

/**
 * An unencrypted binary packet around `payload`, padded to a multiple of 8
 * with at least 4 bytes of padding (RFC 4253 §6).
 */
export function packet(payload: Uint8Array, padding: (n: number) => Uint8Array): Uint8Array {
  let padLength = 8 - ((5 + payload.length) % 8);
  if (padLength < 4) padLength += 8;
  return concat([
    uint32(1 + payload.length + padLength),
    Uint8Array.of(padLength),
    payload,
    padding(padLength),
  ]);
}

/** What a client offers in its KEXINIT. */
export interface KexOffer {
  readonly kex: readonly string[];
  readonly hostKey: readonly string[];
  readonly ciphers: readonly string[];
  readonly macs: readonly string[];
}

/** A KEXINIT payload (message 20) with the given 16-byte cookie. */
export function kexInitPayload(offer: KexOffer, cookie: Uint8Array): Uint8Array {
  if (cookie.length !== 16) throw new RangeError("The KEXINIT cookie must be 16 bytes");
  const list = (names: readonly string[]) => sshString(names.join(","));
  return concat([
    Uint8Array.of(MSG.kexinit),
    cookie,
    list(offer.kex),
    list(offer.hostKey),
    list(offer.ciphers),
    list(offer.ciphers),
    list(offer.macs),
    list(offer.macs),
    list(["none"]),
    list(["none"]),
    list([]),
    list([]),
    Uint8Array.of(0),
    uint32(0),
  ]);
}

/** The ECDH init payload (message 30) carrying the client's ephemeral public key. */
export function ecdhInitPayload(publicKey: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(MSG.kexEcdhInit), sshString(publicKey)]);
}

/** A polite goodbye (message 1, reason 11 "by application"). */
export function disconnectPayload(description: string): Uint8Array {
  return concat([Uint8Array.of(MSG.disconnect), uint32(11), sshString(description), sshString("")]);
}

/** Reads SSH types from a payload, refusing to run past its end. */
class Cursor {
  #view: DataView;
  #offset: number;
  constructor(readonly bytes: Uint8Array, offset = 0) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#offset = offset;
  }
  byte(): number {
    if (this.#offset + 1 > this.bytes.length) throw new WireError("Truncated SSH message");
    return this.bytes[this.#offset++] as number;
  }
  uint32(): number {
    if (this.#offset + 4 > this.bytes.length) throw new WireError("Truncated SSH message");
    const value = this.#view.getUint32(this.#offset);
    this.#offset += 4;
    return value;
  }
  string(): Uint8Array {
    const length = this.uint32();
    if (this.#offset + length > this.bytes.length) throw new WireError("Truncated SSH string");
    const value = this.bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }
  nameList(): string[] {
    const text = decoder.decode(this.string());
    return text === "" ? [] : text.split(",");
  }
  skip(n: number): void {
    if (this.#offset + n > this.bytes.length) throw new WireError("Truncated SSH message");
    this.#offset += n;
  }
}

/** The algorithm lists of a KEXINIT we care about. */
export interface KexInit {
  readonly kex: readonly string[];
  readonly hostKey: readonly string[];
}

/** Parses a KEXINIT payload (message 20). */
export function parseKexInit(payload: Uint8Array): KexInit {
  const cursor = new Cursor(payload);
  if (cursor.byte() !== MSG.kexinit) throw new WireError("Expected KEXINIT");
  cursor.skip(16);
  return { kex: cursor.nameList(), hostKey: cursor.nameList() };
}

/** Parses the ECDH reply (message 31): the host key blob. */
export function parseEcdhReply(payload: Uint8Array): { hostKey: Uint8Array } {
  const cursor = new Cursor(payload);
  if (cursor.byte() !== MSG.kexEcdhReply) throw new WireError("Expected the key exchange reply");
  const hostKey = cursor.string();
  cursor.string(); // the server's ephemeral key
  cursor.string(); // the signature: ssh verifies it when it logs in
  return { hostKey: new Uint8Array(hostKey) };
}

/** The description of a DISCONNECT message (message 1). */
export function parseDisconnect(payload: Uint8Array): string {
  const cursor = new Cursor(payload, 1);
  const reason = cursor.uint32();
  const text = decoder.decode(cursor.string());
  return text ? `${text} (reason ${reason})` : `reason ${reason}`;
}

/** The first algorithm of the client's list that the server also offers (RFC 4253 §7.1). */
export function negotiate(
  client: readonly string[],
  server: readonly string[],
): string | undefined {
  return client.find((name) => server.includes(name));
}

/**
 * Splits what a server sends into its version line and packets. The server
 * may send other lines before its version line (RFC 4253 §4.2); they are
 * skipped, up to a limit.
 */
export class Incoming {
  #buffer: Uint8Array = new Uint8Array(0);
  #banner: string | undefined;
  #lines = 0;

  /** Adds received bytes. */
  push(bytes: Uint8Array): void {
    this.#buffer = concat([this.#buffer, bytes]);
  }

  /** The server's version line, once complete; throws when the peer is not an SSH server. */
  banner(): string | undefined {
    while (this.#banner === undefined) {
      const newline = this.#buffer.indexOf(0x0a);
      if (newline < 0) {
        if (this.#buffer.length > 8192) throw new WireError("No SSH version line");
        return undefined;
      }
      const line = decoder.decode(this.#buffer.subarray(0, newline)).replace(/\r$/, "");
      this.#buffer = this.#buffer.subarray(newline + 1);
      if (line.startsWith("SSH-")) {
        if (!/^SSH-(2\.0|1\.99)-/.test(line)) {
          throw new WireError(`Unsupported SSH version ${JSON.stringify(line.slice(0, 40))}`);
        }
        this.#banner = line;
      } else if (++this.#lines > 50) {
        throw new WireError("No SSH version line");
      }
    }
    return this.#banner;
  }

  /** The next packet's payload, once complete. Call after `banner()` returned a line. */
  payload(): Uint8Array | undefined {
    if (this.#buffer.length < 5) return undefined;
    const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset, 5);
    const length = view.getUint32(0);
    const padding = view.getUint8(4);
    if (length < 5 || length > MAX_PACKET || padding >= length) {
      throw new WireError(`Malformed SSH packet (length ${length})`);
    }
    if (this.#buffer.length < 4 + length) return undefined;
    const payload = this.#buffer.slice(5, 4 + length - padding);
    this.#buffer = this.#buffer.subarray(4 + length);
    return payload;
  }
}
