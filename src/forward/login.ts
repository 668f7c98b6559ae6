/**
 * The forward API's logins: HTTP Basic against the users file, with a
 * per-address back-off. Checks from one address run one at a time, so each
 * sees the failures before it (100 concurrent guesses get three hashes); a
 * credential that verified is trusted for a minute without hashing again.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { IpAddress } from "../net/ip.ts";
import { type ApiUser, type UsersFile, verifyPasswordAsync } from "./users.ts";

/** How long a verified credential is trusted without running scrypt again. */
const VERIFIED_TTL_MS = 60_000;

/** What logins need. */
export interface LoginDeps {
  /** Off: the name is only a label and every request passes. */
  readonly authentication: boolean;
  readonly loadUsers: () => Promise<UsersFile>;
  readonly now: () => number;
  readonly log: Logger;
  readonly onFailure: () => void;
}

/** Who logged in, or the refusal to answer with. */
export type LoginResult =
  | { readonly name: string; readonly user?: ApiUser }
  | {
    readonly status: 401 | 429;
    readonly message: string;
    readonly headers: Readonly<Record<string, string>>;
  };

/** A login check for `Authorization` header values from a client address. */
export function createLogin(
  deps: LoginDeps,
): (authorization: string, remote: IpAddress) => Promise<LoginResult> {
  const failures = new Map<string, { count: number; until: number }>();
  const verified = new Map<string, { hash: string; until: number }>();
  const turns = new Map<string, Promise<void>>();

  const check = async (
    key: string,
    name: string,
    password: string,
    header: string,
  ): Promise<LoginResult> => {
    const blocked = failures.get(key);
    if (blocked && blocked.until > deps.now()) {
      const retry = Math.ceil((blocked.until - deps.now()) / 1000);
      return {
        status: 429,
        message: `too many failed logins from ${key}; retry in ${retry} s`,
        headers: { "retry-after": String(retry) },
      };
    }
    const user = (await deps.loadUsers()).users.get(name);
    // The cache key is a digest of the header, never the password; a changed hash voids it.
    const cacheKey = createHash("sha256").update(header).digest("base64");
    const cached = verified.get(cacheKey);
    const fresh = cached !== undefined && user !== undefined && cached.hash === user.hash &&
      cached.until > deps.now();
    // An unknown user costs a scrypt too: the answer's timing must not tell names apart.
    if ((!fresh && !(await verifyPasswordAsync(user, password))) || !user) {
      deps.onFailure();
      const count = (blocked?.count ?? 0) + 1;
      // Three tries, then an exponential back-off per address (1 s, 2 s, 4 s … at most 5 min).
      const until = count >= 3 ? deps.now() + Math.min(2 ** (count - 3), 300) * 1000 : 0;
      failures.set(key, { count, until });
      deps.log.warn("Authentication failed for {user} from {client}", {
        user: name || "-",
        client: key,
      });
      return {
        status: 401,
        message: "authentication required",
        headers: { "www-authenticate": 'Basic realm="xferproxy"' },
      };
    }
    failures.delete(key);
    if (!fresh) {
      if (verified.size > 10_000) verified.clear();
      verified.set(cacheKey, { hash: user.hash, until: deps.now() + VERIFIED_TTL_MS });
    }
    return { name, user };
  };

  return async (header, remote) => {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
    const decoded = match ? Buffer.from(match[1] as string, "base64").toString("utf8") : "";
    const colon = decoded.indexOf(":");
    const name = colon >= 0 ? decoded.slice(0, colon) : decoded;
    const password = colon >= 0 ? decoded.slice(colon + 1) : "";
    if (!deps.authentication) return { name: name || "anonymous" };
    const key = remote.text;
    const turn = (turns.get(key) ?? Promise.resolve()).then(() =>
      check(key, name, password, header)
    );
    const tail = turn.then(() => {}, () => {});
    turns.set(key, tail);
    void tail.then(() => {
      if (turns.get(key) === tail) turns.delete(key);
    });
    return await turn;
  };
}
