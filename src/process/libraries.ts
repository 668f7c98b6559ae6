/**
 * Where the shared libraries xferproxy loads through FFI live on the Debian
 * and Red Hat families; deno.json grants FFI for exactly these paths, and
 * each mode keeps only its own (each mode's command.ts).
 * @module
 */

/** libc, for the reverse session's execve into ssh. */
export const LIBC_PATHS = [
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
] as const;

/** libnftables, for the DNAT service's changes. */
export const LIBNFTABLES_PATHS = [
  "/usr/lib/x86_64-linux-gnu/libnftables.so.1",
  "/usr/lib64/libnftables.so.1",
  "/usr/lib/aarch64-linux-gnu/libnftables.so.1",
] as const;
