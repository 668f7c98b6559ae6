/**
 * Measuring helpers shared by the benchmarks: timing a command, a
 * process's memory and open files, waiting for a "ready" line, UDP streams.
 * @module
 */

import { must, ROOT } from "../tests/testbed/mod.ts";
import type { ForwardingEntry } from "../src/dnat/registry.ts";
import type { Owner } from "../src/dnat/types.ts";
import { parseIp } from "../src/net/ip.ts";

/** Seconds a UDP stream runs. */
export const UDP_SECONDS = 3;

/** argv running a bench script with the project's Deno and deno.json, in a network namespace. */
export function denoScriptInNs(ns: string, script: string, ...args: string[]): string[] {
  const deno = [`${ROOT}.tools/bin/deno`, "run", "-A", "--quiet", "--cached-only"];
  return ["ip", "netns", "exec", ns, ...deno, "--config", `${ROOT}deno.json`, script, ...args];
}

/** Runs argv to completion; returns the seconds it took. */
export async function timed(argv: string[]): Promise<number> {
  const start = performance.now();
  await must(argv, { timeoutMs: 600_000 });
  return (performance.now() - start) / 1000;
}

/**
 * Resident and proportional set size of a process, and its anonymous memory (heap and stacks,
 * which no other process shares), in KiB (0 when it is gone).
 */
export async function memoryKb(pid: number): Promise<{ rss: number; pss: number; anon: number }> {
  const text = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`).catch(() => "");
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
  return { rss: field("Rss"), pss: field("Pss"), anon: field("Anonymous") };
}

/** Proportional set size of a process, in KiB (0 when it is gone). */
export async function pssKb(pid: number): Promise<number> {
  return (await memoryKb(pid)).pss;
}

/** CPU time a process has used, user and system, in seconds (/proc/PID/stat, USER_HZ 100). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces): state is 3rd, utime 14th, stime 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** How many file descriptors a process has open. */
export async function openFds(pid: number): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return count;
}

/** Sum of the PSS of processes, in MiB. */
export async function pssMib(pids: readonly number[]): Promise<number> {
  return (await Promise.all(pids.map(pssKb))).reduce((a, b) => a + b, 0) / 1024;
}

/** pids of a user's processes, leaving out sshd and the sleep a benchmark session runs. */
export async function userProcesses(user: string): Promise<number[]> {
  const out: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const status = await Deno.readTextFile(`/proc/${entry.name}/status`).catch(() => "");
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    const name = /^Name:\s+(\S+)/m.exec(status)?.[1];
    // sshd is the same in every set-up compared, and sleep is the command under test.
    if (uid === undefined || name === "sshd" || name === "sleep") continue;
    if (uid === (await userId(user))) out.push(Number(entry.name));
  }
  return out;
}

const uids = new Map<string, string>();
async function userId(user: string): Promise<string> {
  if (!uids.has(user)) uids.set(user, (await must(["id", "-u", user])).trim());
  return uids.get(user) as string;
}

/** A started command that printed "ready"; `finish()` closes stdin and returns stdout's last line and the exit code. */
export interface Started {
  finish(): Promise<{ line: string; code: number }>;
  readonly pid: number;
}

/** Starts a line-oriented command and waits for "ready" on stdout. */
export async function startReady(argv: string[], timeoutMs = 60_000): Promise<Started> {
  const [program, ...args] = argv;
  const child = new Deno.Command(program as string, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (!text.includes("ready\n")) {
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${argv.join(" ")}: no ready line`);
    }
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`${argv.join(" ")} ended before ready`);
    text += chunk.value;
  }
  const writer = child.stdin.getWriter();
  return {
    pid: child.pid,
    async finish() {
      await writer.close().catch(() => {});
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += chunk.value;
      }
      const status = await child.status;
      return { line: text.trim().split("\n").at(-1) ?? "", code: status.code };
    },
  };
}

/** Streams UDP from a namespace into a sink started by `sinkArgv`; receiver Mbit/s and loss. */
export async function udpStream(
  ns: string,
  sinkArgv: string[],
  srcPort: number,
  dstIp: string,
  dstPort: number,
): Promise<{ mbit: number; loss: number }> {
  const sink = await startReady(sinkArgv);
  const sent = JSON.parse(
    await must([
      "ip",
      "netns",
      "exec",
      ns,
      "python3",
      `${ROOT}tests/e2e/probes/udp_send.py`,
      String(srcPort),
      dstIp,
      String(dstPort),
      String(UDP_SECONDS),
    ], { timeoutMs: 60_000 }),
  );
  await new Promise((r) => setTimeout(r, 300));
  const got = JSON.parse((await sink.finish()).line);
  return {
    mbit: (got.bytes * 8) / sent.seconds / 1e6,
    loss: 1 - got.datagrams / Math.max(1, sent.sent),
  };
}

/**
 * Registry entry number `i` of a benchmark's synthetic sessions: its own client address in
 * 198.18.100.0/22 and up, forwarding `proxy`:33001 to `server`:33001 with filtering on.
 */
export function syntheticEntry(
  i: number,
  owner: Owner,
  proxy: string,
  server: string,
): ForwardingEntry {
  const id = crypto.randomUUID();
  return {
    id,
    owner,
    uid: 0,
    rule: 1,
    created: Date.now(),
    forwarding: {
      session: {
        id,
        owner,
        client: parseIp(`198.18.${100 + Math.floor(i / 250)}.${(i % 250) + 1}`)!,
        clientPort: 40000 + (i % 20000),
        proxy: parseIp(proxy)!,
        proxyPort: 33001,
        portCount: 1,
        server: parseIp(server)!,
        serverPort: 33001,
      },
      filtering: true,
    },
  };
}
