/**
 * What a mode keeps of the binary's permission set: each mode's `needs` in
 * its command.ts says; everything else is revoked before the mode runs
 * (platform/permissions.ts).
 * @module
 */

/** What a mode keeps. Anything not listed is revoked. */
export interface Needs {
  readonly read?: true;
  readonly write?: true;
  readonly net?: true;
  readonly env?: true;
  readonly sys?: true;
  /** Libraries the mode may load through FFI; every other one in the set is revoked. */
  readonly ffi?: readonly string[];
  /** Programs the mode may run; everything else in the set is revoked. */
  readonly run?: readonly string[];
}
