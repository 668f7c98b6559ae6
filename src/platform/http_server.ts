/**
 * The forward daemon's HTTP(S) server on plain sockets: Deno.serve has no
 * header timeout and no connection cap, and ~20,000 half-sent requests
 * ended the daemon with "Too many open files". Here every connection has
 * one deadline for TLS handshake, head and body; connections are capped in
 * total and per client address (the cap is far below the fd limit, so the
 * daemon can always accept, answer /healthz and clean up); accept errors
 * back off instead of ending the loop; and nothing a client does can raise
 * an uncaught rejection.
 * @module
 */

import { asIpv4, type IpAddress, parseIp } from "../net/ip.ts";
import { MAX_BODY } from "../forward/api.ts";
import { headEnd, parseHead, type Refusal, responseHead } from "../forward/http_wire.ts";

/** Limits of the server; the defaults suit an API of small JSON requests. */
export interface HttpLimits {
  /** From accept to the end of the body, TLS handshake included. */
  readonly requestTimeoutMs: number;
  /** Writing the response to a client that does not read. */
  readonly writeTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxPerAddress: number;
  readonly maxHeadBytes: number;
  readonly maxBodyBytes: number;
}

/** The limits the daemon runs with (docs/forward.md). */
export const DEFAULT_LIMITS: HttpLimits = {
  requestTimeoutMs: 10_000,
  writeTimeoutMs: 10_000,
  // Under systemd's default soft limit of 1024 fds, with room for rules, pipes and the users file.
  maxConnections: 768,
  // Inside users may share one NAT address: room for a burst of them.
  maxPerAddress: 256,
  maxHeadBytes: 16 * 1024,
  maxBodyBytes: MAX_BODY,
};

/** Where and how to listen. */
export interface ServeOptions {
  readonly hostname: string;
  readonly port: number;
  readonly cert?: string;
  readonly key?: string;
  readonly limits?: HttpLimits;
  /**
   * Told about refused connections and accept errors (rate-limited by the caller's logger),
   * and connections that failed mid-request (a client reset, a TLS handshake that failed).
   */
  readonly onEvent?: (event: string, detail: Record<string, unknown>) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serves HTTP, or HTTPS when cert and key are given; resolves once listening. */
export function serveHttp(
  options: ServeOptions,
  handler: (request: Request, remote: IpAddress) => Promise<Response>,
): Promise<{ shutdown(): Promise<void> }> {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const event = options.onEvent ?? (() => {});
  const listener: Deno.Listener = options.cert && options.key
    ? Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.cert,
      key: options.key,
    })
    : Deno.listen({ hostname: options.hostname, port: options.port });
  /** Open connections, oldest first; `reading` until their request is complete. */
  const open = new Map<Deno.Conn, { reading: boolean }>();
  const perAddress = new Map<string, number>();
  let closing = false;

  const serveConn = async (conn: Deno.Conn, remote: IpAddress) => {
    const timer = setTimeout(() => conn.close(), limits.requestTimeoutMs);
    let response: Response;
    try {
      const request = await readRequest(conn, limits);
      clearTimeout(timer);
      const state = open.get(conn);
      if (state) state.reading = false;
      if ("status" in request) {
        response = refusalResponse(request);
      } else {
        response = await handler(request, remote).catch(() =>
          jsonResponse(500, { error: "internal error" })
        );
      }
    } catch {
      clearTimeout(timer);
      return; // timed out, reset or not TLS: nothing to answer
    }
    const writeTimer = setTimeout(() => conn.close(), limits.writeTimeoutMs);
    try {
      const body = new Uint8Array(await response.arrayBuffer());
      const head = encoder.encode(responseHead(response.status, response.headers, body.length));
      await writeAll(conn, head);
      await writeAll(conn, body);
    } catch {
      /* the client went away */
    } finally {
      clearTimeout(writeTimer);
    }
  };

  /**
   * At the cap, the oldest connection still sending its request makes room:
   * a flood of slow requests from many addresses then only ever holds the
   * newest slots, and a quick request (/healthz) gets through.
   */
  const evictOldestReader = () => {
    for (const [conn, state] of open) {
      if (!state.reading) continue;
      open.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
      return;
    }
  };

  const track = (conn: Deno.Conn) => {
    // A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d: they are IPv4 clients.
    const parsed = parseIp((conn.remoteAddr as Deno.NetAddr).hostname);
    const remote = parsed && (asIpv4(parsed) ?? parsed);
    const key = remote?.text ?? "?";
    const count = perAddress.get(key) ?? 0;
    if (open.size >= limits.maxConnections) evictOldestReader();
    if (!remote || open.size >= limits.maxConnections || count >= limits.maxPerAddress) {
      event("refused", { client: key, open: open.size, fromClient: count });
      try {
        conn.close();
      } catch { /* already closed */ }
      return;
    }
    open.set(conn, { reading: true });
    perAddress.set(key, count + 1);
    serveConn(conn, remote).catch((error) =>
      event("connection_error", { client: key, error: String(error) })
    ).finally(() => {
      try {
        conn.close();
      } catch { /* closed by a timer */ }
      open.delete(conn);
      const left = (perAddress.get(key) ?? 1) - 1;
      if (left > 0) perAddress.set(key, left);
      else perAddress.delete(key);
    });
  };

  const acceptLoop = (async () => {
    let backoffMs = 0;
    while (!closing) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        backoffMs = 0;
      } catch (error) {
        if (closing || error instanceof Deno.errors.BadResource) return;
        // EMFILE and friends: wait for connections to close rather than give up (as Go's net/http).
        backoffMs = Math.min(Math.max(backoffMs * 2, 5), 1000);
        event("accept_error", { error: String(error), retryMs: backoffMs });
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        continue;
      }
      track(conn);
    }
  })();

  return Promise.resolve({
    async shutdown() {
      closing = true;
      listener.close();
      for (const conn of open.keys()) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await acceptLoop;
    },
  });
}

async function readRequest(conn: Deno.Conn, limits: HttpLimits): Promise<Request | Refusal> {
  const buffer = new Uint8Array(limits.maxHeadBytes + limits.maxBodyBytes);
  let filled = 0;
  let end = -1;
  while (end < 0) {
    if (filled >= limits.maxHeadBytes) return { status: 431, message: "request head too large" };
    const n = await conn.read(buffer.subarray(filled, limits.maxHeadBytes));
    if (n === null) throw new Error("closed before the end of the head");
    filled += n;
    end = headEnd(buffer.subarray(0, filled));
  }
  const head = parseHead(decoder.decode(buffer.subarray(0, end - 4)), limits.maxBodyBytes);
  if ("status" in head) return head;
  while (filled - end < head.contentLength) {
    const n = await conn.read(buffer.subarray(filled, end + head.contentLength));
    if (n === null) throw new Error("closed before the end of the body");
    filled += n;
  }
  // The handler routes on the path only; the Host header is not trusted for anything.
  let url: URL;
  try {
    url = new URL(head.target, "http://localhost");
  } catch {
    return { status: 400, message: "malformed request target" };
  }
  const method = head.method;
  try {
    return new Request(url, {
      method,
      headers: head.headers.map(([n, v]) => [n, v] as [string, string]),
      ...(method === "GET" || method === "HEAD"
        ? {}
        : { body: buffer.slice(end, end + head.contentLength) }),
    });
  } catch {
    return { status: 400, message: "malformed request" };
  }
}

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

function refusalResponse(refusal: Refusal): Response {
  return jsonResponse(refusal.status, { error: refusal.message });
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}
