/**
 * The DNAT service's local socket: a Unix stream socket whose file only
 * root and the proxy's group may open, and whose every connection comes
 * with its peer as the kernel knows it (SO_PEERCRED: pid and uid at
 * connect time; SO_PEERPIDFD, Linux 6.5+: a pidfd of that very process).
 * Lines in, lines out, read only as fast as the service takes them (a peer
 * writing ahead waits on its own socket); nothing the peer writes says who it is.
 * @module
 */

import { errno, libc, LINUX } from "./libc.ts";
import type { FdEvents } from "./fd_events.ts";

/** The connecting process, as the kernel reported it. */
export interface Peer {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** A pidfd of the peer itself, where the kernel has SO_PEERPIDFD; else undefined. */
  readonly pidfd?: number;
}

/** One accepted connection. */
export interface PeerConnection {
  readonly peer: Peer;
  /** The next line (without its newline); undefined at end of input, overflow or timeout. */
  nextLine(timeoutMs: number): Promise<string | undefined>;
  send(line: string): void;
  /** Closes the connection (not the peer's pidfd, which the caller owns). */
  close(): void;
}

/** A listening server. */
export interface UnixServer {
  close(): void;
}

const SUN_PATH_MAX = 108;

function sockaddr(path: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length >= SUN_PATH_MAX) throw new Error(`Socket path "${path}" is too long`);
  const address = new Uint8Array(2 + SUN_PATH_MAX);
  new DataView(address.buffer).setUint16(0, LINUX.AF_UNIX, true);
  address.set(bytes, 2);
  return address;
}

function peerOf(fd: number): Peer | undefined {
  const c = libc();
  const cred = new Uint8Array(12);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, 12, true);
  if (c.getsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_PEERCRED, cred, length) !== 0) return undefined;
  const view = new DataView(cred.buffer);
  const peer = {
    pid: view.getInt32(0, true),
    uid: view.getUint32(4, true),
    gid: view.getUint32(8, true),
  };
  const pidfd = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, 4, true);
  if (c.getsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_PEERPIDFD, pidfd, length) === 0) {
    return { ...peer, pidfd: new DataView(pidfd.buffer).getInt32(0, true) };
  }
  return peer;
}

/**
 * Binds `path` (replacing a stale socket there: the caller owns its
 * directory) and calls `onConnection` for each connection, from the loop.
 */
export function listenUnix(
  path: string,
  events: FdEvents,
  maxLine: number,
  onConnection: (connection: PeerConnection) => void,
): UnixServer {
  const c = libc();
  const fd = c.socket(
    LINUX.AF_UNIX,
    LINUX.SOCK_STREAM | LINUX.SOCK_NONBLOCK | LINUX.SOCK_CLOEXEC,
    0,
  );
  if (fd < 0) throw new Error(`socket failed (errno ${errno()})`);
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const address = sockaddr(path);
  if (c.bind(fd, address, address.length) !== 0 || c.listen(fd, 512) !== 0) {
    const code = errno();
    c.close(fd);
    throw new Error(`Cannot listen on ${path} (errno ${code})`);
  }
  const stopAccepting = events.watch(fd, () => {
    for (;;) {
      const conn = c.accept4(fd, null, null, LINUX.SOCK_NONBLOCK | LINUX.SOCK_CLOEXEC);
      if (conn < 0) return;
      const peer = peerOf(conn);
      if (!peer) {
        c.close(conn);
        continue;
      }
      onConnection(connection(conn, peer, events, maxLine));
    }
  });
  return {
    close() {
      stopAccepting();
      c.close(fd);
      try {
        Deno.removeSync(path);
      } catch { /* gone already */ }
    },
  };
}

function connection(fd: number, peer: Peer, events: FdEvents, maxLine: number): PeerConnection {
  const c = libc();
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  let pending = "";
  let ended = false;
  let closed = false;
  const lines: string[] = [];
  let waiter: (() => void) | undefined;
  // Read only while no whole line waits unread: a peer writing ahead (lines in a loop while its
  // decision probes servers) then fills its own socket's buffer, not the service's memory. What
  // waits is at most one read's lines and a partial line under `maxLine`.
  let stop: (() => void) | undefined;
  const pause = () => {
    stop?.();
    stop = undefined;
  };
  const onReadable = () => {
    for (;;) {
      const n = Number(c.read(fd, buffer, BigInt(buffer.length)));
      if (n < 0 && errno() === LINUX.EAGAIN) break;
      if (n <= 0) {
        ended = true;
        pause();
        break;
      }
      pending += decoder.decode(buffer.subarray(0, n), { stream: true });
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        lines.push(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
      // A line longer than the protocol allows ends the conversation.
      if (pending.length > maxLine) {
        ended = true;
        pause();
        break;
      }
      if (lines.length > 0) {
        pause();
        break;
      }
    }
    waiter?.();
  };
  const resume = () => {
    if (stop || ended || closed) return;
    try {
      stop = events.watch(fd, onReadable);
    } catch {
      ended = true;
    }
  };
  resume();
  return {
    peer,
    async nextLine(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (lines.length === 0 && !ended && !closed) {
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        resume();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiter = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        waiter = undefined;
      }
      return lines.shift();
    },
    send(line) {
      if (closed) return;
      const bytes = new TextEncoder().encode(line);
      let offset = 0;
      // Replies are a few hundred bytes; the peer is waiting for them.
      for (let tries = 0; offset < bytes.length && tries < 1000; tries++) {
        const n = Number(c.write(fd, bytes.subarray(offset), BigInt(bytes.length - offset)));
        if (n > 0) offset += n;
        else if (n < 0 && errno() !== LINUX.EAGAIN) return;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      pause();
      c.close(fd);
      waiter?.();
    },
  };
}
