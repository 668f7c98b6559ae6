/**
 * Least privilege per mode: the binary is granted one permission set
 * (deno.json "permissions.xferproxy"); at start each mode revokes what it
 * does not need, so a bug in one mode cannot use another mode's powers.
 * @module
 */

import type { Needs } from "../cli/needs.ts";
import { LOADABLE, RUNNABLE } from "../version.ts";

/** Revokes every permission the mode does not need. Idempotent. */
export function revokeExcept(needs: Needs): void {
  const simple = ["read", "write", "net", "env", "sys"] as const;
  for (const name of simple) {
    if (!needs[name]) Deno.permissions.revokeSync({ name });
  }
  revokeListed("run", RUNNABLE, needs.run ?? []);
  revokeListed("ffi", LOADABLE, needs.ffi ?? []);
}

/**
 * Revokes a listed permission entirely, or each granted item the mode does not keep. A program
 * kept by name keeps its grants in the system directories too (`/usr/sbin/iptables` for
 * `iptables`: deno.json names both, see process/packages.ts).
 */
function revokeListed(name: "run" | "ffi", granted: readonly string[], keep: readonly string[]) {
  if (keep.length === 0) {
    Deno.permissions.revokeSync({ name });
    return;
  }
  for (const item of granted) {
    if (keep.includes(item)) continue;
    if (name === "run" && keep.includes(programName(item))) continue;
    Deno.permissions.revokeSync(name === "run" ? { name, command: item } : { name, path: item });
  }
}

/** `iptables` for `/usr/sbin/iptables`; a bare name stays as it is. */
function programName(item: string): string {
  return item.slice(item.lastIndexOf("/") + 1);
}
