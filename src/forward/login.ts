/**
 * The forward API's logins: HTTP Basic against the users file, with a
 * back-off per client address and per target user name. A success clears
 * only its own name's failures, never the address's: logging in with one's
 * own account between guesses at another's buys nothing. Checks from one
 * address, and checks for one name, run one at a time, so each sees the
 * failures before it (100 concurrent guesses get three hashes); a credential
 * that verified is trusted for a minute without hashing again.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { IpAddress } from "../net/ip.ts";
import { createBackoff } from "./backoff.ts";
import { checkUserName } from "./user_names.ts";
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

/**
 * A login check for `Authorization` header values from a client address. `holder` is the user
 * holding the session the request names, if any: that user's name is not held back, because
 * knowing one of the user's session IDs (unguessable) proves the caller is no guesser, so guesses
 * at a name never cut that user's running sessions off their keepalives. Such a login does not
 * clear the name's failures either.
 */
export function createLogin(
  deps: LoginDeps,
): (authorization: string, remote: IpAddress, holder?: string) => Promise<LoginResult> {
  const backoff = createBackoff(deps.now);
  const verified = new Map<string, { hash: string; until: number }>();
  const turns = new Map<string, Promise<void>>();

  const check = async (
    address: string,
    keys: Keys,
    name: string,
    password: string,
    header: string,
    holder: string | undefined,
  ): Promise<LoginResult> => {
    // Naming one's own session neither meets the name's hold nor clears it (below).
    const ownSession = name === holder;
    const fromAddress = backoff.heldFor(keys.address);
    const forName = keys.name && !ownSession ? backoff.heldFor(keys.name) : 0;
    if (fromAddress > 0 || forName > 0) {
      const retry = Math.ceil(Math.max(fromAddress, forName) / 1000);
      const why = fromAddress >= forName ? `from ${address}` : `for ${name}`;
      return {
        status: 429,
        message: `too many failed logins ${why}; retry in ${retry} s`,
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
      // Known or not, a name is counted alike: which names get held must not tell them apart.
      for (const key of [keys.address, keys.name]) if (key) backoff.fail(key);
      deps.log.warn("Authentication failed for {user} from {client}", {
        user: name || "-",
        client: address,
      });
      return {
        status: 401,
        message: "authentication required",
        headers: { "www-authenticate": 'Basic realm="xferproxy"' },
      };
    }
    // Only this name's failures: the address keeps its count, whoever else logs in from it. A
    // keepalive does not clear them: a running session must not reset the count for guessers.
    if (keys.name && !ownSession) backoff.clear(keys.name);
    if (!fresh) {
      if (verified.size > 10_000) verified.clear();
      verified.set(cacheKey, { hash: user.hash, until: deps.now() + VERIFIED_TTL_MS });
    }
    return { name, user };
  };

  return async (header, remote, holder) => {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
    const decoded = match ? Buffer.from(match[1] as string, "base64").toString("utf8") : "";
    const colon = decoded.indexOf(":");
    const name = colon >= 0 ? decoded.slice(0, colon) : decoded;
    const password = colon >= 0 ? decoded.slice(colon + 1) : "";
    if (!deps.authentication) return { name: name || "anonymous" };
    // No credentials at all is the challenge's first half, not a guess: a scraper or client not
    // yet configured must not hold its address back from everyone else's logins.
    if (header === "") {
      return {
        status: 401,
        message: "authentication required",
        headers: { "www-authenticate": 'Basic realm="xferproxy"' },
      };
    }
    const keys = backoffKeys(remote, name);
    const queues = [keys.address, keys.name].filter((k): k is string => k !== undefined);
    const before = Promise.all(queues.map((k) => turns.get(k)));
    const turn = before.then(() => check(remote.text, keys, name, password, header, holder));
    const tail = turn.then(() => {}, () => {});
    for (const k of queues) turns.set(k, tail);
    void tail.then(() => {
      for (const k of queues) if (turns.get(k) === tail) turns.delete(k);
    });
    return await turn;
  };
}

/** A login's keys in the back-off table. */
interface Keys {
  readonly address: string;
  /** None for a name that can be no user's: the address's count holds it. */
  readonly name?: string;
}

function backoffKeys(remote: IpAddress, name: string): Keys {
  return {
    address: `address ${remote.text}`,
    ...(checkUserName(name) === undefined ? { name: `name ${name}` } : {}),
  };
}
