/**
 * Outgoing TCP for the host key probe, with Nagle off: the probe's small
 * packets must not wait for acknowledgements.
 * @module
 */

import type { ByteConn } from "../ssh/probe.ts";

/** Connects to `host:port`. */
export async function dialTcp(host: string, port: number): Promise<ByteConn> {
  const conn = await Deno.connect({ hostname: host, port });
  conn.setNoDelay(true);
  return conn;
}
