/**
 * What an API user name and an allowed destination may look like: checked
 * when `forward user add` parses its arguments and when the users file is
 * read. Kept apart from users.ts so that parsing a command line loads no
 * password hashing.
 * @module
 */

import { parseCidr } from "../net/ip.ts";
import { isHostName } from "../net/endpoint.ts";

/** API user names: our own namespace, so the portable POSIX form. */
const API_USERNAME = /^[a-z_][a-z0-9_.-]{0,31}$/;

/** Checks an allowed-destination entry; returns why it is bad, or undefined. */
export function checkAllowEntry(entry: string): string | undefined {
  if (entry === "*" || parseCidr(entry) || isHostName(entry)) return undefined;
  return `allowed destination must be a CIDR, a host name or *, got "${entry}"`;
}

/** Checks an API user name. */
export function checkUserName(name: string): string | undefined {
  return API_USERNAME.test(name)
    ? undefined
    : `user name must match [a-z_][a-z0-9_.-]{0,31}, got "${name}"`;
}
