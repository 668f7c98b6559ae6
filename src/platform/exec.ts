/**
 * Replacing this process with another program (execve through Deno FFI on
 * libc), as a reverse session does once it has decided everything: the pid,
 * sshd's pipes or pty and the process's place in sshd's session stay; the
 * Deno runtime goes. FFI is granted to reverse mode only, for libc only.
 * @module
 */

import type { Handoff } from "../ssh/handoff.ts";
import { LIBC_PATHS } from "../process/libraries.ts";

/** The exec could not happen; this process is still running. */
export class ExecError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ExecError";
  }
}

const SYMBOLS = {
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  // memmove(p, p, 0) returns p: the address of a buffer, without the pointer helpers
  // that FFI scoped to one library does not allow.
  addressOf: { name: "memmove", parameters: ["buffer", "buffer", "usize"], result: "usize" },
  signal: { parameters: ["i32", "usize"], result: "usize" },
  pthread_sigmask: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  close_range: { parameters: ["u32", "u32", "i32"], result: "i32", optional: true },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
} as const;

const SIG_DFL = 0n;
const SIG_SETMASK = 2;
const CLOSE_RANGE_CLOEXEC = 4;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const SIGKILL = 9;
const SIGSTOP = 19;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;

/** NUL-terminated strings in one block, and the NULL-terminated table of their addresses. */
function cStringTable(libc: Libc, strings: readonly string[]) {
  const encoder = new TextEncoder();
  const parts = strings.map((s) => {
    if (s.includes("\0")) throw new ExecError("An exec argument contains a NUL byte");
    return encoder.encode(s + "\0");
  });
  const block = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  const table = new BigUint64Array(strings.length + 1);
  const base = libc.symbols.addressOf(block, block, 0n) as bigint;
  let offset = 0;
  parts.forEach((part, i) => {
    block.set(part, offset);
    table[i] = base + BigInt(offset);
    offset += part.length;
  });
  // `block` must stay reachable until execve: it is returned alongside its table.
  return { block, table: new Uint8Array(table.buffer) };
}

function openLibc(): Libc {
  for (const path of LIBC_PATHS) {
    try {
      Deno.statSync(path);
    } catch {
      continue;
    }
    return Deno.dlopen(path, SYMBOLS);
  }
  throw new ExecError(`libc not found in ${LIBC_PATHS.join(", ")}`);
}

/**
 * Replaces this process with `handoff.path`. The new program gets default
 * signal dispositions (Deno ignores SIGPIPE, which exec would keep), an
 * empty signal mask, and fds 0-2 only. Returns only by throwing.
 * @throws {ExecError}
 */
export function replaceProcess(handoff: Handoff): never {
  let libc: Libc;
  try {
    libc = openLibc();
  } catch (error) {
    if (error instanceof ExecError) throw error;
    throw new ExecError(`Cannot load libc for the exec: ${String(error)}`, { cause: error });
  }
  const path = cStringTable(libc, [handoff.path]);
  const argv = cStringTable(libc, handoff.argv);
  const env = cStringTable(libc, handoff.env);
  for (let signal = 1; signal <= 31; signal++) {
    if (signal !== SIGKILL && signal !== SIGSTOP) libc.symbols.signal(signal, SIG_DFL);
  }
  libc.symbols.pthread_sigmask(SIG_SETMASK, new Uint8Array(128), 0n);
  // Deno opens its own files close-on-exec; this also covers anything inherited.
  const closed = libc.symbols.close_range?.(3, 0xffffffff, CLOSE_RANGE_CLOEXEC) ?? -1;
  if (closed !== 0) {
    for (let fd = 3; fd < 1024; fd++) libc.symbols.fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  const pathBytes = path.block;
  libc.symbols.execve(pathBytes, argv.table, env.table);
  // Still here: execve failed. Keep the blocks alive up to this point.
  void argv.block;
  void env.block;
  throw new ExecError(`Cannot run ${handoff.path}`);
}
