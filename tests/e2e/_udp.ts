/**
 * UDP helpers for end-to-end tests: a reverse session whose upstream command
 * is the UDP echo endpoint (tests/udp_echo.py), and a client that sends
 * datagrams from a chosen source port and counts intact echoes.
 * @module
 */

import { run } from "./_exec.ts";
import { ROOT } from "./_run.ts";
import type { Testbed } from "./_testbed.ts";

/** A reverse session running the echo endpoint upstream; `end()` closes it like a client would. */
export interface EchoSession {
  end(): Promise<{ code: number; stderr: string }>;
  kill(): void;
}

/** Starts `ssh user@host python3 tests/udp_echo.py port` and waits for "ready". */
export async function startEchoSession(
  bed: Testbed,
  user: string,
  host: string,
  port: number,
): Promise<EchoSession> {
  const [program, ...args] = bed.sshArgs(user);
  const child = new Deno.Command(program as string, {
    args: [...args, host, "python3", `${ROOT}tests/udp_echo.py`, String(port)],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error("echo session not ready in 20 s")), 20_000)
  );
  let text = "";
  try {
    while (!text.includes("ready\n")) {
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk.done) throw new Error(`echo session ended early: ${await stderr}`);
      text += chunk.value;
    }
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

/** Sends `count` datagrams from `srcPort` in the client namespace; returns how many echoes came back intact. */
export async function sendUdp(
  bed: Testbed,
  srcPort: number,
  dstIp: string,
  dstPort: number,
  count = 20,
): Promise<number> {
  const result = await run([
    "ip",
    "netns",
    "exec",
    bed.ns.client,
    "python3",
    `${ROOT}tests/e2e/probes/udp_client.py`,
    String(srcPort),
    dstIp,
    String(dstPort),
    String(count),
  ], { timeoutMs: 30_000 });
  if (result.code !== 0) throw new Error(`udp_client failed: ${result.stderr}`);
  return JSON.parse(result.stdout).echoed;
}
