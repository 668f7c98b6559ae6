/**
 * A session's connection to the DNAT service's socket: one request line,
 * one reply line, each within a time limit. The socket is trusted only
 * where root alone could have put it (a root-owned directory nobody else
 * may write, a root-owned socket): otherwise the session falls back to
 * sudo, as when the service is down.
 * @module
 */

import type { ServiceLink } from "../reverse/registrar.ts";
import { encodeLine, MAX_LINE, parseReply } from "../dnat/service_protocol.ts";
import { rootsSocket } from "./root_socket.ts";

/** Connects to the service at `path`; undefined when it is not there or not root's. */
export async function connectService(path: string): Promise<ServiceLink | undefined> {
  if (!rootsSocket(path)) return undefined;
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return undefined;
  }
  const reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let closed = false;
  const nextLine = async (deadline: number): Promise<string | undefined> => {
    while (!buffered.includes("\n")) {
      const left = deadline - Date.now();
      if (left <= 0 || buffered.length > MAX_LINE) return undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const chunk = await Promise.race([
        reader.read(),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), left))),
      ]).finally(() => clearTimeout(timer));
      if (!chunk || chunk.done) return undefined;
      buffered += chunk.value;
    }
    const newline = buffered.indexOf("\n");
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    return line;
  };
  const encoder = new TextEncoder();
  return {
    async request(message, timeoutMs) {
      if (closed) return undefined;
      try {
        await conn.write(encoder.encode(encodeLine(message)));
        const line = await nextLine(Date.now() + timeoutMs);
        return line === undefined ? undefined : parseReply(line);
      } catch {
        return undefined;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      reader.cancel().catch(() => {});
      try {
        conn.close();
      } catch { /* closed */ }
    },
  };
}
