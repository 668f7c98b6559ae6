/**
 * The pre-flight probe of an internal server over a real TCP connection
 * (ssh/probe.ts speaks the protocol), the bare connect that stands in for it
 * while an answer is reused (reverse/probe_reuse.ts), and whether the hand-off's program is
 * there: what a session checks before it becomes ssh, in the session or in
 * the DNAT service that decides it.
 * @module
 */

import type { Prober } from "../reverse/upstream.ts";
import { probeSsh, reachSsh } from "../ssh/probe.ts";
import type { IpEndpoint } from "../net/endpoint.ts";
import { dialTcp } from "./tcp.ts";

const label = (endpoint: IpEndpoint) =>
  `${endpoint.ip.family === 6 ? `[${endpoint.ip.text}]` : endpoint.ip.text}:${endpoint.port}`;

/** Probes a server: connect, version line, key exchange up to its host key. */
export const realProbe: Prober = (endpoint, hostKeyAlgorithms, timeoutMs) =>
  probeSsh(() => dialTcp(endpoint.ip.text, endpoint.port), {
    hostKeyAlgorithms,
    timeoutMs,
    label: label(endpoint),
  });

/** Connects only: undefined when the server's host accepts on the port, else why not. */
export const realReach = (endpoint: IpEndpoint, timeoutMs: number) =>
  reachSsh(() => dialTcp(endpoint.ip.text, endpoint.port), { timeoutMs, label: label(endpoint) });

/** A regular file someone may execute. */
export function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}
