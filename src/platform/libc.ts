/**
 * libc through Deno FFI, for what Deno itself does not offer the DNAT
 * service: a Unix socket whose peer the kernel names (SO_PEERCRED,
 * SO_PEERPIDFD), pidfds and epoll to learn of a process's exit at once,
 * /proc (which Deno opens only to a fully privileged process), and the
 * accounts and groups NSS knows, and memory given back (release_pages.ts). Only the
 * service loads it (and reverse mode, for its execve, through exec.ts).
 * @module
 */

import { LIBC_PATHS } from "../process/libraries.ts";

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  // glibc 2.30+ (Debian 11, RHEL 9).
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // Off the main thread: it waits for the kernel.
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  syscall: { parameters: ["i64", "i64", "i64", "i64"], result: "i64" },
  __errno_location: { parameters: [], result: "pointer" },
  // Through NSS, so LDAP and AD groups resolve as well as /etc/group's.
  getgrnam: { parameters: ["buffer"], result: "pointer" },
  // Reentrant and off the main thread: with LDAP or AD behind NSS a lookup may take a while.
  getpwnam_r: {
    parameters: ["buffer", "buffer", "buffer", "usize", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // The C allocator's memory given back (the service, now and then), and bounded:
  // mallopt(M_MMAP_THRESHOLD) keeps large buffers out of the heap.
  malloc_trim: { parameters: ["usize"], result: "i32" },
  mallopt: { parameters: ["i32", "i32"], result: "i32" },
  // memmove(dst, src, n) copies from a pointer the library returned into a buffer of ours.
  memmove: { parameters: ["buffer", "pointer", "usize"], result: "pointer" },
} as const;

/** The loaded library. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let loaded: Libc | undefined;

/**
 * libc, loaded once from the first of LIBC_PATHS that exists.
 * @throws {Error} when none does
 */
export function libc(): Libc {
  if (loaded) return loaded;
  for (const path of LIBC_PATHS) {
    try {
      Deno.statSync(path);
    } catch {
      continue;
    }
    loaded = Deno.dlopen(path, SYMBOLS).symbols;
    return loaded;
  }
  throw new Error(`libc not found in ${LIBC_PATHS.join(", ")}`);
}

/** errno after a failed call. */
export function errno(): number {
  const c = libc();
  const out = new Uint8Array(4);
  c.memmove(out, c.__errno_location(), 4n);
  return new DataView(out.buffer).getInt32(0, true);
}

/** A group's gid through NSS; undefined when it does not exist. */
export function groupId(name: string): number | undefined {
  const c = libc();
  const group = c.getgrnam(cPath(name));
  if (group === null) return undefined;
  // struct group { char *gr_name; char *gr_passwd; gid_t gr_gid; char **gr_mem; }
  const bytes = new Uint8Array(24);
  c.memmove(bytes, group, 24n);
  return new DataView(bytes.buffer).getUint32(16, true);
}

/** An account's uid through NSS; undefined when it does not exist (or cannot be looked up). */
export async function userId(name: string): Promise<number | undefined> {
  // struct passwd { char *pw_name; char *pw_passwd; uid_t pw_uid; gid_t pw_gid; … } (48 bytes)
  const entry = new Uint8Array(48);
  const strings = new Uint8Array(16384);
  const found = new Uint8Array(8);
  const status = await libc().getpwnam_r(
    cPath(name),
    entry,
    strings,
    BigInt(strings.length),
    found,
  );
  if (status !== 0 || new DataView(found.buffer).getBigUint64(0, true) === 0n) return undefined;
  return new DataView(entry.buffer).getUint32(16, true);
}

/** A path as a NUL-terminated C string. */
export function cPath(path: string): Uint8Array<ArrayBuffer> {
  if (path.includes("\0")) throw new TypeError("A path contains a NUL byte");
  return new TextEncoder().encode(path + "\0") as Uint8Array<ArrayBuffer>;
}

/** A symbolic link's target through libc (a /proc link of any process); undefined if unreadable. */
export function readLink(path: string): string | undefined {
  const buffer = new Uint8Array(4096);
  const n = Number(libc().readlink(cPath(path), buffer, BigInt(buffer.length)));
  return n > 0 ? new TextDecoder().decode(buffer.subarray(0, n)) : undefined;
}

/**
 * The open(2) flags whose numbers differ by architecture: x86_64 uses the generic ones, aarch64
 * its own (arch/arm64/include/uapi/asm/fcntl.h), where the generic O_DIRECTORY is O_DIRECT and
 * the generic O_NOFOLLOW is O_LARGEFILE.
 */
export function openFlagsFor(
  arch: typeof Deno.build.arch,
): { O_DIRECTORY: number; O_NOFOLLOW: number } {
  return arch === "aarch64"
    ? { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 }
    : { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 };
}

/** Constants of Linux and glibc on x86_64 and aarch64. */
export const LINUX = {
  ...openFlagsFor(Deno.build.arch),
  AF_UNIX: 1,
  SOCK_STREAM: 1,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  SOL_SOCKET: 1,
  SO_PEERCRED: 17,
  SO_PEERPIDFD: 77,
  O_RDONLY: 0,
  O_CLOEXEC: 0o2000000,
  O_NONBLOCK: 0o4000,
  EAGAIN: 11,
  EINTR: 4,
  ESRCH: 3,
  EPOLL_CLOEXEC: 0o2000000,
  EPOLL_CTL_ADD: 1,
  EPOLL_CTL_DEL: 2,
  EPOLLIN: 1,
  EPOLLHUP: 0x10,
  EFD_CLOEXEC: 0o2000000,
  EFD_NONBLOCK: 0o4000,
  /** The same number on every architecture (glibc wraps it only from 2.36). */
  SYS_PIDFD_OPEN: 434,
  /** Linux 5.6+; CAP_SYS_PTRACE over the target. */
  SYS_PIDFD_GETFD: 438,
  EBADF: 9,
  EPERM: 1,
  ENOSYS: 38,
  /** _IOWR(0xFF, 11, struct pidfd_info), 64-byte version 0 (Linux 6.13+). */
  PIDFD_GET_INFO: 0xc040ff0bn,
  PIDFD_INFO_EXIT: 1n << 3n,
  /** struct epoll_event is packed on x86_64 only. */
  EPOLL_EVENT_SIZE: Deno.build.arch === "x86_64" ? 12 : 16,
} as const;
