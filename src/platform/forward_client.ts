/**
 * `xferproxy forward connect`: the client side of forward mode, usable as an
 * OpenSSH ProxyCommand. It asks the proxy's API for a session, relays stdio
 * to the allocated port (the proxy DNATs it to the destination's SSH port),
 * sends keepalives, and deletes the session when it ends. With
 * --print-mapping it prints the mapping as JSON for UDP tools and holds the
 * session until stdin closes.
 * @module
 */

import { Buffer } from "node:buffer";
import type { ConnectOptions } from "../forward/run.ts";
import {
  errorReason,
  parseSessionView,
  type SessionRequest,
  SESSIONS_PATH,
} from "../forward/contract.ts";

/** Runs the client; returns the exit status. */
export async function forwardConnect(o: ConnectOptions): Promise<number> {
  const scheme = o.proxy.secure ? "https" : "http";
  const host = o.proxy.host.includes(":") ? `[${o.proxy.host}]` : o.proxy.host;
  const base = `${scheme}://${host}:${o.proxy.port}`;
  const client = o.cacert
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(o.cacert)] })
    : undefined;
  const auth = "Basic " + Buffer.from(`${o.proxy.user}:${o.password ?? ""}`).toString("base64");
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: auth, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      ...(client ? { client } : {}),
      signal: AbortSignal.timeout(15_000),
    });
  let response: Response;
  const request: SessionRequest = {
    destination: o.destination,
    ssh_port: o.sshPort,
    udp_port: o.udpPort,
  };
  try {
    response = await call("POST", SESSIONS_PATH, request);
  } catch (error) {
    o.say(`xferproxy: cannot reach the proxy API at ${base}: ${(error as Error).message}`);
    return 255;
  }
  const text = await response.text();
  if (response.status !== 201) {
    o.say(`xferproxy: the proxy refused the session (${response.status}): ${errorReason(text)}`);
    return 255;
  }
  const session = parseSessionView(text);
  if (!session) {
    o.say(`xferproxy: the proxy's answer is not a session: ${text.trim().slice(0, 200)}`);
    return 255;
  }
  const interval = Math.max(1, session.keepalive_interval) * 1000;
  const keepalive = setInterval(() => {
    call("POST", `${SESSIONS_PATH}/${session.id}/keepalive`).then(
      (r) => r.body?.cancel(),
      () => {},
    );
  }, interval);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) Deno.addSignalListener(s, onSignal);
  try {
    if (o.printMapping) {
      const mapping = {
        ...session,
        destination: o.destination,
        ssh_port: o.sshPort,
        udp_port: o.udpPort,
      };
      await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(mapping) + "\n"));
      await Promise.race([drain(Deno.stdin.readable), aborted(stop.signal)]);
      return 0;
    }
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({
        hostname: session.proxy_host === "0.0.0.0" ? o.proxy.host : session.proxy_host,
        port: session.port,
      });
    } catch (error) {
      o.say(
        `xferproxy: cannot connect to the allocated proxy port ${session.port}: ${
          (error as Error).message
        }`,
      );
      return 255;
    }
    // Either side closing ends the relay; a reset is the end, not an error to report to ssh.
    const up = Deno.stdin.readable.pipeTo(conn.writable, { preventClose: false }).catch(() => {});
    const down = conn.readable.pipeTo(Deno.stdout.writable, { preventClose: true }).catch(() => {});
    await Promise.race([down, aborted(stop.signal)]);
    void up;
    try {
      conn.close();
    } catch { /* closed */ }
    return 0;
  } finally {
    clearInterval(keepalive);
    for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      Deno.removeSignalListener(s, onSignal);
    }
    // Best effort: a session the proxy cannot be told about expires after session_timeout.
    await call("DELETE", `${SESSIONS_PATH}/${session.id}`).then((r) => r.body?.cancel(), () => {});
    client?.close();
  }
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<void> {
  try {
    for await (const _ of stream) { /* discard */ }
  } catch { /* closed */ }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
