/**
 * OpenSSH known_hosts: parsing and host key verification. Supports plain and
 * hashed (`|1|salt|hash`) host names, `[host]:port`, wildcards, negation and
 * `@revoked`. There is no trust on first use: an unknown key is refused.
 * @module
 */

import { createHash, createHmac } from "node:crypto";
import { Buffer } from "node:buffer";

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
    const key = new Uint8Array(Buffer.from(keyText, "base64"));
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

/** The key type recorded inside a public key blob (its first SSH string). */
export function blobKeyType(blob: Uint8Array): string | undefined {
  if (blob.length < 4) return undefined;
  const length = new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(0);
  if (length > 64 || 4 + length > blob.length) return undefined;
  return new TextDecoder().decode(blob.subarray(4, 4 + length));
}

/** `SHA256:…` as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Uint8Array): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
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

function hashedMatch(pattern: string, name: string): boolean {
  const [, magic, salt, hash] = pattern.split("|");
  if (magic !== "1" || !salt || !hash) return false;
  const digest = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
  return digest === hash;
}

/** True when the entry's host patterns cover `name` (negations win). */
export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  let matched = false;
  for (const pattern of entry.patterns) {
    if (pattern.startsWith("|")) {
      if (hashedMatch(pattern, name)) matched = true;
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

/** Checks the key a host presented against known_hosts entries. */
export function verifyHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  presented: Uint8Array,
): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const same = (e: KnownHostEntry) =>
    e.key.length === presented.length && e.key.every((b, i) => b === presented[i]);
  const presentedPrint = fingerprint(presented);
  if (entries.some((e) => e.marker === "revoked" && same(e))) {
    return { ok: false, reason: "revoked", presented: presentedPrint, expected: [] };
  }
  const forHost = entries.filter((e) => e.marker === undefined && entryMatchesHost(e, name));
  if (forHost.some(same)) return { ok: true };
  return {
    ok: false,
    reason: forHost.length === 0 ? "unknown" : "changed",
    presented: presentedPrint,
    expected: forHost.map((e) => fingerprint(e.key)),
  };
}

/** Host key algorithms to offer so the server presents a key type known_hosts holds for it. */
export function hostKeyAlgorithms(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): string[] {
  const name = knownHostsName(host, port);
  const types = new Set(
    entries.filter((e) => !e.marker && entryMatchesHost(e, name)).map((e) => e.keyType),
  );
  return [...types].flatMap((
    t,
  ) => (t === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [t]));
}
