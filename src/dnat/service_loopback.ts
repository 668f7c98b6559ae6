/**
 * A session conversation inside the service: when the service decides a
 * session itself, the decision's registrar talks to the same session side
 * a session process talks to over the socket (hello, pick, failed,
 * register), through this in-memory pair, with the real peer the kernel
 * reported. One code path admits, registers and watches either way. Pure.
 * @module
 */

import type { ServiceLink } from "../reverse/registrar.ts";
import { encodeLine, parseReply } from "./service_protocol.ts";

/** Lines one way, each taken by one waiter; undefined to every waiter once closed. */
function lineQueue() {
  const lines: string[] = [];
  const waiters: ((line: string | undefined) => void)[] = [];
  let closed = false;
  return {
    put(line: string) {
      if (closed) return;
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    },
    take(timeoutMs: number): Promise<string | undefined> {
      if (lines.length) return Promise.resolve(lines.shift());
      if (closed) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(done);
          if (i >= 0) waiters.splice(i, 1);
          resolve(undefined);
        }, timeoutMs);
        const done = (line: string | undefined) => {
          clearTimeout(timer);
          resolve(line);
        };
        waiters.push(done);
      });
    },
    close() {
      closed = true;
      for (const waiter of waiters.splice(0)) waiter(undefined);
    },
  };
}

/** The service's end of a conversation: service_sessions.ts's `SessionConnection`. */
export interface LoopbackConnection<Peer> {
  readonly peer: Peer;
  nextLine(timeoutMs: number): Promise<string | undefined>;
  send(line: string): void;
  close(): void;
}

/** The session's end (`link`) and the service's end (`connection`) of one conversation. */
export function loopback<Peer>(
  peer: Peer,
): { link: ServiceLink; connection: LoopbackConnection<Peer> } {
  const requests = lineQueue();
  const replies = lineQueue();
  const close = () => {
    requests.close();
    replies.close();
  };
  return {
    link: {
      async request(message, timeoutMs) {
        requests.put(encodeLine(message).trimEnd());
        const line = await replies.take(timeoutMs);
        return line === undefined ? undefined : parseReply(line);
      },
      close,
    },
    connection: {
      peer,
      nextLine: (timeoutMs) => requests.take(timeoutMs),
      send: (line) => replies.put(line.trimEnd()),
      close,
    },
  };
}
