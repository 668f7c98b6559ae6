/**
 * UDP helpers for end-to-end tests: a reverse session whose upstream command
 * is the UDP echo endpoint (tests/udp_echo.py), and a client that sends
 * datagrams from a chosen source port and counts intact echoes.
 * @module
 */

import { run } from "./exec.ts";
import { readUntil } from "./lines.ts";
import { PYTHON, ROOT } from "./paths.ts";
import type { Testbed } from "./reverse_bed.ts";

/** A reverse session running the echo endpoint upstream; `end()` closes it like a client would. */
export interface EchoSession {
  end(): Promise<{ code: number; stderr: string }>;
  kill(): void;
}

/**
 * Starts `ssh user@host python3 tests/udp_echo.py port` and waits for "ready". `via`: the ssh
 * command line up to the command instead (the benchmark's native double hop).
 */
export async function startEchoSession(
  bed: Testbed,
  user: string,
  host: string,
  port: number,
  via: readonly string[] = [...bed.sshArgs(user), host],
): Promise<EchoSession> {
  const [program, ...args] = via;
  const child = new Deno.Command(program as string, {
    // The session's command, as the rule's policy allows it: the upstream's python3.
    args: [...args, "python3", `${ROOT}tests/udp_echo.py`, String(port)],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    await readUntil(
      reader,
      "ready\n",
      20_000,
      async () => `echo session ended early: ${await stderr}`,
    );
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    throw error;
  }
  const writer = child.stdin.getWriter();
  return {
    async end() {
      await writer.close().catch(() => {});
      const status = await child.status;
      reader.cancel().catch(() => {});
      return { code: status.code, stderr: await stderr };
    },
    kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    },
  };
}

/** Runs a probe script from tests/e2e/probes in the client namespace; returns its JSON line. */
async function clientProbe(
  bed: Testbed,
  script: string,
  args: (string | number)[],
  timeoutMs: number,
) {
  const result = await run([
    "ip",
    "netns",
    "exec",
    bed.ns.client,
    PYTHON,
    `${ROOT}tests/e2e/probes/${script}`,
    ...args.map(String),
  ], { timeoutMs });
  if (result.code !== 0) {
    throw new Error(
      `${script} failed (${
        result.signal ? `killed by ${result.signal} after ${timeoutMs} ms` : `exit ${result.code}`
      }): ${result.stderr}`,
    );
  }
  return JSON.parse(result.stdout);
}

/** Sends `count` datagrams from `srcPort` in the client namespace; returns how many echoes came back intact. */
export async function sendUdp(
  bed: Testbed,
  srcPort: number,
  dstIp: string,
  dstPort: number,
  count = 20,
): Promise<number> {
  return (await clientProbe(bed, "udp_client.py", [srcPort, dstIp, dstPort, count], 30_000)).echoed;
}

/** What a UDP stream measured. */
export interface BlastResult {
  sent: number;
  received: number;
  loss: number;
  mbit_per_s: number;
}

/** Streams 1400-byte datagrams for `seconds` from the client namespace and counts the echoes. */
export function blastUdp(
  bed: Testbed,
  srcPort: number,
  dstIp: string,
  dstPort: number,
  seconds = 2,
): Promise<BlastResult> {
  return clientProbe(
    bed,
    "udp_blast.py",
    [srcPort, dstIp, dstPort, seconds],
    (seconds + 30) * 1000,
  );
}

/** The echo endpoint run directly in a server namespace (no proxy): the baseline. */
export async function startDirectEcho(
  bed: Testbed,
  which: "a" | "b",
  port: number,
): Promise<{ stop(): Promise<void> }> {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      which === "a" ? bed.ns.a : bed.ns.b,
      PYTHON,
      `${ROOT}tests/udp_echo.py`,
      String(port),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  await readUntil(reader, "ready\n", 20_000, () => "direct echo endpoint did not start");
  const writer = child.stdin.getWriter();
  return {
    async stop() {
      await writer.close().catch(() => {});
      await child.status;
      reader.cancel().catch(() => {});
    },
  };
}
