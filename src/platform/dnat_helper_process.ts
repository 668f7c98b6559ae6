/**
 * The session side of UDP forwarding: `sudo -n xferproxy dnat add … --hold`
 * as a child whose stdin stays open for the life of the session. Closing it
 * (or this process dying) makes the helper remove the rules and purge
 * conntrack. If the helper is refused or fails, the SSH session goes on and
 * the client is told UDP forwarding is unavailable.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { UdpForwarder, UdpForwarding, UdpSession } from "../reverse/udp.ts";

/** How to reach the helper. */
export interface HelperOptions {
  /** Absolute path of this xferproxy executable: what sudoers allows. */
  readonly binary: string;
  readonly configPath: string;
  /** The session process pid: the rules' owner. */
  readonly owner: number;
  readonly log: Logger;
  readonly tellClient: (line: string) => void;
}

const START_TIMEOUT_MS = 15_000;

/** The path sudoers names: the compiled binary itself, or the launcher script that ran us. */
export function selfPath(env: (name: string) => string | undefined): string {
  const exec = Deno.execPath();
  return /\/deno$/.test(exec) ? env("XFERPROXY_BIN") ?? exec : exec;
}

/** A forwarder that runs the DNAT helper through sudo. */
export function sudoForwarder(options: HelperOptions): UdpForwarder {
  return {
    async open(session) {
      const args = helperArgs(options, session);
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command("sudo", { args, stdin: "piped", stdout: "piped", stderr: "piped" })
          .spawn();
      } catch (error) {
        return unavailable(options, `cannot run sudo: ${String(error)}`);
      }
      const stdin = child.stdin.getWriter();
      const lines = readLines(child.stdout);
      const stderrText = new Response(child.stderr).text();
      const first = await Promise.race([
        lines.next(),
        new Promise<"timeout">((r) => setTimeout(() => r("timeout"), START_TIMEOUT_MS)),
      ]);
      const installed = first !== "timeout" && !first.done &&
        parseEvent(first.value)?.event === "installed";
      if (!installed) {
        await stdin.close().catch(() => {});
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        await child.status;
        const why = (await stderrText).trim().split("\n")[0] ||
          (first === "timeout" ? "the helper did not answer in time" : "the helper exited");
        return unavailable(options, why);
      }
      options.log.debug("UDP forwarding installed {detail}", { detail: first.value });
      // Follow the helper's later events (source port learned, removed).
      (async () => {
        for await (const line of { [Symbol.asyncIterator]: () => lines }) {
          options.log.debug("UDP forwarding {detail}", { detail: line });
        }
      })().catch(() => {});
      return holder(options, session, child, stdin, stderrText);
    },
  };
}

function holder(
  options: HelperOptions,
  session: UdpSession,
  child: Deno.ChildProcess,
  stdin: WritableStreamDefaultWriter<Uint8Array>,
  stderrText: Promise<string>,
): UdpForwarding {
  return {
    async close() {
      // Closing stdin is the signal: the helper removes the rules and purges conntrack on its
      // own. The session does not wait for that (the client's exit status would), unless the
      // helper is already gone — then nobody would, and a one-shot helper removes the rules.
      await stdin.close().catch(() => {});
      const early = await Promise.race([
        child.status,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 0)),
      ]);
      if (early === undefined || early.success) {
        child.status.then((status) => {
          if (!status.success) {
            options.log.warn("DNAT helper exited with {code} while removing rules", {
              code: status.code,
            });
          }
        }, () => {});
        return;
      }
      options.log.warn("DNAT helper ended badly ({stderr}); removing session rules directly", {
        stderr: (await stderrText).trim().split("\n")[0] ?? "",
      });
      await new Deno.Command("sudo", {
        args: [
          "-n",
          options.binary,
          "dnat",
          "del",
          "--config",
          options.configPath,
          "--session",
          session.id,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output().catch(() => {});
    },
  };
}

function helperArgs(options: HelperOptions, s: UdpSession): string[] {
  return [
    "-n",
    options.binary,
    "dnat",
    "add",
    "--config",
    options.configPath,
    "--session",
    s.id,
    "--owner",
    String(options.owner),
    "--client",
    s.clientIp.text,
    "--proxy",
    s.proxyIp.text,
    "--rule",
    String(s.rule.index),
    "--host",
    String(s.upstreamIndex),
    "--hold",
  ];
}

function unavailable(options: HelperOptions, why: string): undefined {
  const hint = /password is required|not allowed|may not run/.test(why)
    ? " (sudo refused: add the sudoers line from docs/dnat.md)"
    : "";
  options.log.error("UDP forwarding unavailable: {reason}{hint}", { reason: why, hint });
  options.tellClient("xferproxy: UDP forwarding is unavailable; the SSH session continues");
  return undefined;
}

function parseEvent(line: string): { event?: string } | undefined {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function readLines(stream: ReadableStream<Uint8Array>): AsyncIterator<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    async next(): Promise<IteratorResult<string>> {
      for (;;) {
        const newline = buffer.indexOf("\n");
        if (newline >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          return { done: false, value: line };
        }
        const { value, done } = await reader.read();
        if (done) return { done: true, value: undefined };
        buffer += value;
      }
    },
  };
}
