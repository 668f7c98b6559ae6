/**
 * Forward-proxy API users (Aspera Proxy's asnodeadmin): names, scrypt password
 * hashes with a per-user salt, allowed destinations, admin flag. Pure: the
 * file is read and written by the caller.
 * @module
 */

import { UserError } from "../errors.ts";
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { checkAllowEntry, checkUserName } from "./user_names.ts";

/** One API user as stored. */
export interface ApiUser {
  readonly salt: string;
  readonly hash: string;
  /** CIDRs, host names, or "*" for any public destination. */
  readonly allow: readonly string[];
  readonly admin: boolean;
}

/**
 * The users file: `{ "version": 1, "users": { name: ApiUser } }` on disk. In memory the users are
 * a Map, so a name such as `constructor` or `__proto__` is only ever a name, never a property
 * every object inherits.
 */
export interface UsersFile {
  readonly version: 1;
  readonly users: ReadonlyMap<string, ApiUser>;
}

/** A users file that cannot be used. */
export class UsersFileError extends UserError {}

// scrypt cost: N=2^15, r=8, p=1 (OWASP's minimum), 32-byte key.
const SCRYPT = { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

/** A fresh salt and the scrypt hash of the password, base64. */
export function hashPassword(
  password: string,
  salt = randomBytes(16).toString("base64"),
): { salt: string; hash: string } {
  const hash = scryptSync(password, Buffer.from(salt, "base64"), 32, SCRYPT).toString("base64");
  return { salt, hash };
}

/** Constant-time check of a password against a stored user. */
export function verifyPassword(user: ApiUser, password: string): boolean {
  const expected = Buffer.from(user.hash, "base64");
  const actual = Buffer.from(hashPassword(password, user.salt).hash, "base64");
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** scrypt runs at most this many at once: each takes ~32 MiB and a thread for ~50 ms. */
const MAX_CONCURRENT_HASHES = 2;
let running = 0;
let completed = 0;
const waiting: Array<() => void> = [];

/** How many password hashes have been computed by verifyPasswordAsync (for tests and metrics). */
export function hashesComputed(): number {
  return completed;
}

async function hashLimited(password: string, salt: string): Promise<Buffer> {
  if (running >= MAX_CONCURRENT_HASHES) await new Promise<void>((go) => waiting.push(go));
  running++;
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      scrypt(
        password,
        Buffer.from(salt, "base64"),
        32,
        SCRYPT,
        (error, key) => error ? reject(error) : resolve(key),
      )
    );
  } finally {
    running--;
    completed++;
    waiting.shift()?.();
  }
}

/** Stands in for a user that does not exist, so a wrong name costs what a wrong password does. */
const NOBODY: ApiUser = {
  salt: randomBytes(16).toString("base64"),
  hash: randomBytes(32).toString("base64"),
  allow: [],
  admin: false,
};

/**
 * Checks a password off the event loop (scrypt on the thread pool, at most
 * two at once, the rest queued), in the same time for an unknown user.
 */
export async function verifyPasswordAsync(
  user: ApiUser | undefined,
  password: string,
): Promise<boolean> {
  const stored = user ?? NOBODY;
  const actual = await hashLimited(password, stored.salt);
  const expected = Buffer.from(stored.hash, "base64");
  return user !== undefined && expected.length === actual.length &&
    timingSafeEqual(expected, actual);
}

/** An empty users file. */
export function emptyUsers(): UsersFile {
  return { version: 1, users: new Map() };
}

/**
 * Parses and checks the users file text.
 * @throws {UsersFileError}
 */
export function parseUsers(text: string, path: string): UsersFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new UsersFileError(`Users file "${path}" is not JSON: ${(error as Error).message}`);
  }
  const users = (doc as { users?: unknown })?.users;
  if (
    (doc as { version?: unknown })?.version !== 1 || typeof users !== "object" || users === null
  ) {
    throw new UsersFileError(`Users file "${path}" must be {"version": 1, "users": {...}}`);
  }
  const out = new Map<string, ApiUser>();
  for (const [name, raw] of Object.entries(users)) {
    const u = raw as Partial<ApiUser>;
    const bad = checkUserName(name) ??
      (typeof u.salt !== "string" || typeof u.hash !== "string"
        ? "salt and hash must be strings"
        : undefined) ??
      (!Array.isArray(u.allow)
        ? "allow must be a list"
        : u.allow.map((a) => checkAllowEntry(String(a))).find(Boolean));
    if (bad) throw new UsersFileError(`Users file "${path}": user "${name}": ${bad}`);
    out.set(name, {
      salt: u.salt as string,
      hash: u.hash as string,
      allow: (u.allow as string[]).map(String),
      admin: u.admin === true,
    });
  }
  return { version: 1, users: out };
}

/** The file text (stable key order, trailing newline). */
export function serializeUsers(file: UsersFile): string {
  // fromEntries defines own properties: "__proto__" stays a key, as JSON.parse reads it back.
  return JSON.stringify({ version: file.version, users: Object.fromEntries(file.users) }, null, 2) +
    "\n";
}
