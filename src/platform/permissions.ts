/**
 * Least privilege per mode: the binary is granted one permission set
 * (deno.json "permissions.xferproxy"); at start each mode revokes what it
 * does not need, so a bug in one mode cannot use another mode's powers.
 * @module
 */

import { RUNNABLE } from "../version.ts";

/** What a mode keeps. Anything not listed is revoked. */
export interface Needs {
  readonly read?: true;
  readonly write?: true;
  readonly net?: true;
  readonly env?: true;
  readonly sys?: true;
  /** Programs the mode may run; everything else in the set is revoked. */
  readonly run?: readonly string[];
}

/** Revokes every permission the mode does not need. Idempotent. */
export function revokeExcept(needs: Needs): void {
  const simple = ["read", "write", "net", "env", "sys"] as const;
  for (const name of simple) {
    if (!needs[name]) Deno.permissions.revokeSync({ name });
  }
  const keep = needs.run ?? [];
  if (keep.length === 0) {
    Deno.permissions.revokeSync({ name: "run" });
    return;
  }
  for (const command of RUNNABLE) {
    if (!keep.includes(command)) Deno.permissions.revokeSync({ name: "run", command });
  }
}
