/**
 * conntrack asked over its own netlink socket (ctnetlink), for the one
 * lookup the service makes per ending session: the client connection's
 * state and counters. No process, and a hash probe instead of a walk of the
 * whole table. The socket is opened at the first lookup and kept.
 * @module
 */

import { answerTo, connectionRequest } from "../dnat/conntrack_netlink.ts";
import type { TcpTuple } from "../dnat/conntrack.ts";
import type { TrackedConnection } from "../dnat/conntrack_text.ts";
import { errno, libc, LINUX } from "./libc.ts";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_NETFILTER = 12;
/** The kernel answers within the write; a few short waits cover a busy moment, no more. */
const READ_TRIES = 5;
/** Answers to earlier lookups that gave up, skipped before a lookup gives up too. */
const STALE_MAX = 16;
const READ_PAUSE_MS = 5;

/** Lookups of TCP connections in conntrack. */
export interface ConntrackSocket {
  /** The connection's state and counters; undefined when conntrack does not know it. */
  connection(tuple: TcpTuple): Promise<TrackedConnection | undefined>;
  close(): void;
}

/** The system calls a lookup makes: libc's, or a test's. Negative returns leave `errno()` set. */
export interface NetlinkCalls {
  /** A non-blocking ctnetlink socket's fd, or a negative number. */
  open(): number;
  write(fd: number, bytes: Uint8Array<ArrayBuffer>): number;
  read(fd: number, into: Uint8Array<ArrayBuffer>): number;
  close(fd: number): void;
  errno(): number;
}

/** libc's calls. */
export function libcNetlink(): NetlinkCalls {
  return {
    open: () =>
      libc().socket(
        AF_NETLINK,
        SOCK_RAW | LINUX.SOCK_NONBLOCK | LINUX.SOCK_CLOEXEC,
        NETLINK_NETFILTER,
      ),
    write: (fd, bytes) => Number(libc().write(fd, bytes, BigInt(bytes.length))),
    read: (fd, into) => Number(libc().read(fd, into, BigInt(into.length))),
    close: (fd) => void libc().close(fd),
    errno,
  };
}

/** Opens lazily; every lookup after `close` fails. */
export function conntrackSocket(calls: NetlinkCalls = libcNetlink()): ConntrackSocket {
  let fd: number | undefined;
  let closed = false;
  let seq = 0;
  let queue: Promise<unknown> = Promise.resolve();
  const buffer = new Uint8Array(8192);

  const open = (): number => {
    if (closed) throw new Error("the conntrack socket is closed");
    if (fd !== undefined) return fd;
    const opened = calls.open();
    if (opened < 0) throw new Error(`cannot open a ctnetlink socket: errno ${calls.errno()}`);
    return fd = opened;
  };

  const lookup = async (tuple: TcpTuple): Promise<TrackedConnection | undefined> => {
    const socket = open();
    seq = (seq + 1) >>> 0 || 1;
    const request = connectionRequest(tuple, seq);
    if (calls.write(socket, request) !== request.length) {
      throw new Error(`ctnetlink request failed: errno ${calls.errno()}`);
    }
    for (let tries = 0, stale = 0; tries < READ_TRIES && stale < STALE_MAX;) {
      const n = calls.read(socket, buffer);
      if (n < 0) {
        const error = calls.errno();
        if (error !== LINUX.EAGAIN && error !== LINUX.EINTR) {
          throw new Error(`ctnetlink answer failed: errno ${error}`);
        }
        tries++;
        await new Promise((resolve) => setTimeout(resolve, READ_PAUSE_MS));
        // Closed meanwhile (the service stops): the number may be another file's by now.
        if (fd !== socket) throw new Error("the conntrack socket is closed");
        continue;
      }
      // An answer to an earlier lookup that gave up is skipped.
      const answer = answerTo(buffer.subarray(0, n), seq);
      if (answer) return answer.connection;
      stale++;
    }
    throw new Error("ctnetlink did not answer the lookup");
  };

  return {
    connection(tuple) {
      // One lookup at a time: each reads only its own answer.
      const result = queue.then(() => lookup(tuple));
      queue = result.catch(() => {});
      return result;
    },
    close() {
      closed = true;
      if (fd !== undefined) calls.close(fd);
      fd = undefined;
    },
  };
}
