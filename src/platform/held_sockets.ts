/**
 * The TCP connections a process holds, read from its sockets themselves: the
 * DNAT service's way to learn which connection sshd's monitor holds. Each
 * socket is copied into the service (pidfd_getfd, Linux 5.6+, CAP_SYS_PTRACE),
 * asked for its addresses and state, and closed at once: a lookup per socket,
 * where /proc/PID/net/tcp walks every TCP socket on the host. Where that is
 * refused the reader says why, and the caller reads the tables instead.
 * @module
 */

import {
  netClassGroups,
  parseSockaddr,
  type ProcReader,
  socketInode,
  type TcpConnection,
} from "../dnat/procfs.ts";
import { firstTimes } from "../log/once.ts";
import { openPidfd } from "./exit_watch.ts";
import { errno, libc, LINUX, readLink } from "./libc.ts";
import { namedLinkTargets, readProcFile } from "./proc_readers.ts";

const SO_PROTOCOL = 38;
const SO_DOMAIN = 39;
const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO_TCP = 6;
const TCP_INFO = 11;
/** tcp_info's first byte, tcpi_state. */
const TCP_ESTABLISHED = 1;
/** At most this many reasons are said: one per kind is enough to act on. */
const MAX_REASONS_SAID = 8;

/** A socket option's bytes (`size` of them at most), or undefined where the kernel refuses. */
function sockopt(fd: number, level: number, name: number, size: number): Uint8Array | undefined {
  const value = new Uint8Array(size);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, size, true);
  return libc().getsockopt(fd, level, name, value, length) === 0 ? value : undefined;
}

function intOption(fd: number, level: number, name: number): number | undefined {
  const value = sockopt(fd, level, name, 4);
  return value && new DataView(value.buffer).getInt32(0, true);
}

function address(fd: number, peer: boolean): Uint8Array<ArrayBuffer> | undefined {
  const c = libc();
  const storage = new Uint8Array(128);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, storage.length, true);
  const status = peer ? c.getpeername(fd, storage, length) : c.getsockname(fd, storage, length);
  return status === 0
    ? storage.subarray(0, new DataView(length.buffer).getUint32(0, true))
    : undefined;
}

/** The inode of a socket of ours, from its own fd (the copy, not the name it had over there). */
function ownSocketInode(fd: number): number | undefined {
  const target = readLink(`/proc/self/fd/${fd}`);
  return target === undefined ? undefined : socketInode(target);
}

/** The connection on a socket of ours, if it is an established TCP one. */
function establishedTcp(fd: number, inode: number): TcpConnection | undefined {
  const domain = intOption(fd, LINUX.SOL_SOCKET, SO_DOMAIN);
  if (domain !== AF_INET && domain !== AF_INET6) return undefined;
  if (intOption(fd, LINUX.SOL_SOCKET, SO_PROTOCOL) !== IPPROTO_TCP) return undefined;
  if (sockopt(fd, IPPROTO_TCP, TCP_INFO, 8)?.[0] !== TCP_ESTABLISHED) return undefined;
  const localBytes = address(fd, false);
  const remoteBytes = address(fd, true);
  const local = localBytes && parseSockaddr(localBytes);
  const remote = remoteBytes && parseSockaddr(remoteBytes);
  return local && remote ? { local, remote, inode } : undefined;
}

/** Why the kernel refused a pidfd call, and what an administrator can do about it. */
export function refusalText(error: number): string {
  if (error === LINUX.ENOSYS) return "this kernel has no pidfd_getfd (Linux 5.6+)";
  if (error === LINUX.EPERM) {
    return "pidfd_getfd was refused: the service needs CAP_SYS_PTRACE and SystemCallFilter=pidfd_getfd (as the packaged unit has), and kernel.yama.ptrace_scope below 3 with no security module denying it";
  }
  return `pidfd_getfd failed with errno ${error}`;
}

/**
 * The established TCP connections among `pid`'s sockets, one per socket however many fds hold it
 * (`sshd -i` holds its connection as stdin and stdout), or why they cannot be read so. `ownGroups`
 * are the service's own net_cls/net_prio groups: a socket copied across groups would change
 * class, so a process in other ones is not looked at this way.
 */
export function heldTcp(
  pid: number,
  ownGroups: readonly string[],
): TcpConnection[] | { refused: string } {
  const c = libc();
  const pidfd = openPidfd(pid);
  if (pidfd === undefined) {
    const error = errno();
    return error === LINUX.ESRCH ? [] : { refused: refusalText(error) };
  }
  try {
    if (ownGroups.length > 0) {
      const text = readProcFile(`/proc/${pid}/cgroup`);
      // Unreadable: the process is gone, and holds nothing.
      if (text === undefined) return [];
      if (netClassGroups(text).join("\n") !== ownGroups.join("\n")) {
        return {
          refused:
            "sshd runs in another cgroup v1 net_cls/net_prio group than the service, and a socket copied into the service would take on the service's class",
        };
      }
    }
    const held = new Map<number, TcpConnection>();
    for (const [name, target] of namedLinkTargets(`/proc/${pid}/fd`)) {
      if (socketInode(target) === undefined) continue;
      const fd = Number(
        c.syscall(BigInt(LINUX.SYS_PIDFD_GETFD), BigInt(pidfd), BigInt(Number(name)), 0n),
      );
      if (fd < 0) {
        const error = errno();
        // Closed since it was listed, or the process is gone: nothing held there.
        if (error === LINUX.EBADF || error === LINUX.ESRCH) continue;
        return { refused: refusalText(error) };
      }
      try {
        const inode = ownSocketInode(fd);
        if (inode === undefined) return { refused: "the inode of a copied socket cannot be read" };
        const connection = establishedTcp(fd, inode);
        if (connection) held.set(inode, connection);
      } finally {
        c.close(fd);
      }
    }
    return [...held.values()];
  } finally {
    c.close(pidfd);
  }
}

/**
 * `reader` with `heldTcp`: sockets looked at themselves. `onRefused` hears each new reason they
 * could not be (a few at most), and the caller reads the TCP tables for that process instead.
 */
export function withHeldTcp(reader: ProcReader, onRefused?: (why: string) => void): ProcReader {
  const ownGroups = netClassGroups(readProcFile("/proc/self/cgroup") ?? "");
  const firstTime = firstTimes(MAX_REASONS_SAID);
  return {
    ...reader,
    heldTcp(pid) {
      const held = heldTcp(pid, ownGroups);
      if (Array.isArray(held)) return Promise.resolve(held);
      if (firstTime(held.refused)) onRefused?.(held.refused);
      return Promise.resolve(undefined);
    },
  };
}
