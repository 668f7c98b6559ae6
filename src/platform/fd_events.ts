/**
 * One epoll loop for the DNAT service's own file descriptors: its listening
 * socket, the sessions' connections and their owners' pidfds. epoll_wait
 * runs on an FFI worker thread, so the service's JavaScript never blocks;
 * each ready fd's callback runs on the main thread.
 * @module
 */

import { errno, libc, LINUX } from "./libc.ts";

/** Watches fds for readability. */
export interface FdEvents {
  /** Calls `onReady` each time `fd` is readable (or hung up) until the returned remover runs. */
  watch(fd: number, onReady: () => void): () => void;
  /** Stops the loop; watched fds are not closed. */
  close(): Promise<void>;
}

/**
 * Ready fds one wait returns. Owners ending together (a node's sshd restarted, a thousand
 * sessions at once) should reach the service in one wake, which removes them in one change;
 * 64 a wake made 16 changes of a thousand, each rewriting the ruleset (7.6 s in all).
 */
const MAX_EVENTS = 4096;
/** Failed waits in a row that mean the loop is broken, not interrupted. */
const MAX_FAILURES_IN_A_ROW = 1000;

/** Starts the loop. */
export function epollEvents(): FdEvents {
  const c = libc();
  const epfd = c.epoll_create1(LINUX.EPOLL_CLOEXEC);
  if (epfd < 0) throw new Error(`epoll_create1 failed (errno ${errno()})`);
  const wake = c.eventfd(0, LINUX.EFD_CLOEXEC | LINUX.EFD_NONBLOCK);
  if (wake < 0) throw new Error(`eventfd failed (errno ${errno()})`);
  const callbacks = new Map<number, () => void>();
  const size = LINUX.EPOLL_EVENT_SIZE;
  const dataOffset = size === 12 ? 4 : 8;
  const control = (op: number, fd: number) => {
    const event = new Uint8Array(size);
    const view = new DataView(event.buffer);
    view.setUint32(0, LINUX.EPOLLIN, true);
    view.setBigUint64(dataOffset, BigInt(fd), true);
    return c.epoll_ctl(epfd, op, fd, event);
  };
  if (control(LINUX.EPOLL_CTL_ADD, wake) !== 0) throw new Error("epoll_ctl failed on eventfd");
  let closed = false;
  const events = new Uint8Array(size * MAX_EVENTS);
  const view = new DataView(events.buffer);
  let failures = 0;
  const loop = (async () => {
    while (!closed) {
      const n = await c.epoll_wait(epfd, events, MAX_EVENTS, -1);
      if (n < 0) {
        // The call ran on a worker thread and errno is per thread: `errno()` here would read the
        // main thread's. With this epfd and buffer the one way to fail is EINTR, a signal landing
        // on that thread (the SIGCHLD of each child the service runs), so it is retried; only a
        // run of failures (the descriptor gone) ends the loop.
        if (++failures < MAX_FAILURES_IN_A_ROW) continue;
        throw new Error(`epoll_wait failed ${failures} times in a row`);
      }
      failures = 0;
      const ready: number[] = [];
      for (let i = 0; i < n; i++) {
        ready.push(Number(view.getBigUint64(i * size + dataOffset, true)));
      }
      for (const fd of ready) {
        if (fd === wake) continue;
        try {
          callbacks.get(fd)?.();
        } catch {
          // A callback's failure is its own to report; the loop serves the others.
        }
      }
    }
  })();
  return {
    watch(fd, onReady) {
      callbacks.set(fd, onReady);
      if (control(LINUX.EPOLL_CTL_ADD, fd) !== 0) {
        callbacks.delete(fd);
        throw new Error(`epoll_ctl failed for fd ${fd} (errno ${errno()})`);
      }
      return () => {
        if (!callbacks.delete(fd)) return;
        control(LINUX.EPOLL_CTL_DEL, fd);
      };
    },
    async close() {
      closed = true;
      const one = new Uint8Array(8);
      new DataView(one.buffer).setBigUint64(0, 1n, true);
      c.write(wake, one, 8n);
      await loop.catch(() => {});
      c.close(wake);
      c.close(epfd);
    },
  };
}
