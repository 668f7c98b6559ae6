/**
 * OpenSSH known_hosts: parsing and host key verification. Supports plain and
 * hashed (`|1|salt|hash`) host names, `[host]:port`, wildcards, negation and
 * `@revoked`. There is no trust on first use: an unknown key is refused.
 * Hashing uses WebCrypto: loading node:crypto would cost every session start
 * about 15 ms.
 * @module
 */

/** One usable known_hosts line. */
export interface KnownHostEntry {
  readonly line: number;
  readonly marker?: "revoked" | "cert-authority";
  /** Comma-separated patterns, or one hashed name. */
  readonly patterns: readonly string[];
  readonly keyType: string;
  /** The decoded public key blob. */
  readonly key: Uint8Array;
}

/** Parses known_hosts text; malformed lines are skipped and reported. */
export function parseKnownHosts(text: string): { entries: KnownHostEntry[]; skipped: number[] } {
  const entries: KnownHostEntry[] = [];
  const skipped: number[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0]?.startsWith("@")) {
      const m = fields.shift();
      if (m !== "@revoked" && m !== "@cert-authority") return void skipped.push(i + 1);
      marker = m === "@revoked" ? "revoked" : "cert-authority";
    }
    const [hosts, keyType, keyText] = fields;
    if (!hosts || !keyType || !keyText || !/^[A-Za-z0-9+/]+=*$/.test(keyText)) {
      return void skipped.push(i + 1);
    }
    const key = decodeBase64(keyText);
    if (blobKeyType(key) !== keyType) return void skipped.push(i + 1);
    entries.push({
      line: i + 1,
      ...(marker ? { marker } : {}),
      patterns: hosts.split(","),
      keyType,
      key,
    });
  });
  return { entries, skipped };
}

function decodeBase64(text: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return new Uint8Array(0);
  }
}

function encodeBase64(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)));
}

/** The key type recorded inside a public key blob (its first SSH string). */
export function blobKeyType(blob: Uint8Array): string | undefined {
  if (blob.length < 4) return undefined;
  const length = new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(0);
  if (length > 64 || 4 + length > blob.length) return undefined;
  return new TextDecoder().decode(blob.subarray(4, 4 + length));
}

/** `SHA256:…` as `ssh-keygen -l` prints it. */
export async function fingerprint(blob: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", blob as Uint8Array<ArrayBuffer>);
  return "SHA256:" + encodeBase64(digest).replace(/=+$/, "");
}

/** The name known_hosts stores for a host and port: `host`, or `[host]:port` when not 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, text: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(
    /\?/g,
    ".",
  );
  return new RegExp(`^${regex}$`, "i").test(text);
}

async function hashedMatch(pattern: string, name: string): Promise<boolean> {
  const [, magic, salt, hash] = pattern.split("|");
  if (magic !== "1" || !salt || !hash) return false;
  const key = await crypto.subtle.importKey(
    "raw",
    decodeBase64(salt) as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  const digest = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(name));
  return encodeBase64(digest) === hash;
}

/** True when the entry's host patterns cover `name` (negations win). */
export async function entryMatchesHost(entry: KnownHostEntry, name: string): Promise<boolean> {
  let matched = false;
  for (const pattern of entry.patterns) {
    if (pattern.startsWith("|")) {
      if (await hashedMatch(pattern, name)) matched = true;
    } else if (pattern.startsWith("!")) {
      if (globMatch(pattern.slice(1), name)) return false;
    } else if (globMatch(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The outcome of checking a presented host key. */
export type HostKeyVerdict =
  | { readonly ok: true }
  | {
    readonly ok: false;
    readonly reason: "unknown" | "changed" | "revoked";
    readonly presented: string;
    /** Fingerprints known_hosts holds for this host. */
    readonly expected: readonly string[];
  };

/** The plain (unmarked) entries whose patterns cover `host:port`. */
async function entriesForHost(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): Promise<KnownHostEntry[]> {
  const name = knownHostsName(host, port);
  const out: KnownHostEntry[] = [];
  for (const e of entries) {
    if (e.marker === undefined && await entryMatchesHost(e, name)) out.push(e);
  }
  return out;
}

/**
 * What known_hosts says about one host, resolved ahead of the connection:
 * hashed names need WebCrypto, which answers only asynchronously, while an
 * SSH client must judge the presented key at once (ssh2 stalls the key
 * exchange when its host key callback answers late).
 */
export interface PinnedHostKeys {
  /** Plain entries for the host. */
  readonly forHost: readonly KnownHostEntry[];
  /** Keys marked `@revoked`, for any host. */
  readonly revoked: readonly Uint8Array[];
}

/** The host's pinned keys, for `judgeHostKey`. */
export async function pinnedHostKeys(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): Promise<PinnedHostKeys> {
  return {
    forHost: await entriesForHost(entries, host, port),
    revoked: entries.filter((e) => e.marker === "revoked").map((e) => e.key),
  };
}

/** The verdict on a presented key, without fingerprints. */
export type HostKeyJudgement = "ok" | "unknown" | "changed" | "revoked";

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Judges a presented key synchronously against what `pinnedHostKeys` resolved. */
export function judgeHostKey(pinned: PinnedHostKeys, presented: Uint8Array): HostKeyJudgement {
  if (pinned.revoked.some((key) => sameBytes(key, presented))) return "revoked";
  if (pinned.forHost.some((e) => sameBytes(e.key, presented))) return "ok";
  return pinned.forHost.length === 0 ? "unknown" : "changed";
}

/** A judgement with the fingerprints a person compares. */
export async function describeJudgement(
  pinned: PinnedHostKeys,
  presented: Uint8Array,
  judgement: HostKeyJudgement,
): Promise<HostKeyVerdict> {
  if (judgement === "ok") return { ok: true };
  return {
    ok: false,
    reason: judgement,
    presented: await fingerprint(presented),
    expected: judgement === "revoked"
      ? []
      : await Promise.all(pinned.forHost.map((e) => fingerprint(e.key))),
  };
}

/** Checks the key a host presented against known_hosts entries. */
export async function verifyHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  presented: Uint8Array,
): Promise<HostKeyVerdict> {
  const pinned = await pinnedHostKeys(entries, host, port);
  return describeJudgement(pinned, presented, judgeHostKey(pinned, presented));
}

/** Host key algorithms to offer so the server presents a key type known_hosts holds for it. */
export async function hostKeyAlgorithms(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): Promise<string[]> {
  return pinnedAlgorithms(await entriesForHost(entries, host, port));
}

/** The algorithms that let a server present one of these pinned keys. */
export function pinnedAlgorithms(forHost: readonly KnownHostEntry[]): string[] {
  const types = new Set(forHost.map((e) => e.keyType));
  return [...types].flatMap((
    t,
  ) => (t === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [t]));
}
