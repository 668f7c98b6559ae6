/**
 * The pre-flight probe of an internal server over a real TCP connection
 * (ssh/probe.ts speaks the protocol), and whether the hand-off's program is
 * there: what a session checks before it becomes ssh, in the session or in
 * the DNAT service that decides it.
 * @module
 */

import type { Prober } from "../reverse/upstream.ts";
import { probeSsh } from "../ssh/probe.ts";
import { dialTcp } from "./tcp.ts";

/** Probes a server: connect, version line, key exchange up to its host key. */
export const realProbe: Prober = (endpoint, hostKeyAlgorithms, timeoutMs) =>
  probeSsh(() => dialTcp(endpoint.ip.text, endpoint.port), {
    hostKeyAlgorithms,
    timeoutMs,
    label: `${
      endpoint.ip.family === 6 ? `[${endpoint.ip.text}]` : endpoint.ip.text
    }:${endpoint.port}`,
  });

/** A regular file someone may execute. */
export function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}
