/**
 * conntrack's events for new session flows: one `conntrack -E` for the
 * service's life, so a learning session's first UDP flow is reported as it
 * appears, instead of looked for with a `conntrack -L` every 100 ms (a
 * process each, on a host where sessions are setting up). Only flows our
 * rules marked are reported. When the stream ends it is started again after
 * a pause; meanwhile the service looks for new flows as before.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { flowEventArgs, parseFlowEvent } from "../dnat/conntrack.ts";
import type { FlowEvents, ReportedFlow } from "../dnat/service.ts";
import { SESSION_CT_MARK } from "../dnat/types.ts";
import { errorText } from "../errors.ts";
import { TOOL_ENV } from "./runner.ts";
import { readProcFile } from "./proc_readers.ts";

/** How long after the stream ended it is started again, and how long it must run to count as back. */
export const RESTART_MS = 5000;

/**
 * The most flows kept between two looks: a client sending from thousands of source ports at once
 * must not grow the service, and past this many one look is due anyway.
 */
export const MAX_REPORTED = 1000;

/** The events, followed until `close`. */
export interface FollowedFlows extends FlowEvents {
  close(): Promise<void>;
}

/** Keeps the last line of a stream, never the whole of it. */
export async function lastLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  let last = "";
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + text).split("\n");
    // The unfinished line is kept apart (bounded): it is not joined to the last finished one.
    rest = (parts.pop() ?? "").slice(-500);
    const finished = parts.map((l) => l.trim()).filter(Boolean).at(-1);
    if (finished !== undefined) last = finished.slice(-500);
  }
  return rest.trim() || last;
}

/**
 * Why conntrack sends no events in this network namespace, or undefined when it does:
 * net.netfilter.nf_conntrack_events 0 turns them off (1 on, 2 on while someone listens; a
 * kernel without the file has them on).
 */
export function eventsOff(): string | undefined {
  const value = readProcFile("/proc/sys/net/netfilter/nf_conntrack_events")?.trim();
  return value === "0"
    ? "net.netfilter.nf_conntrack_events is 0: set it to 2 (or 1) for the events"
    : undefined;
}

/**
 * Starts following; `program` is conntrack (a test may name a stand-in), `off` says why events
 * cannot come: checked at each start (the stream is not started then, and counts as stopped) and
 * every `restartMs` while it runs (it is stopped then: the sysctl may be set after the service
 * started, by sysctl.d once conntrack's module loads, or by hand).
 */
export function followFlowEvents(
  log: Logger,
  program = "conntrack",
  restartMs = RESTART_MS,
  off: () => string | undefined = eventsOff,
): FollowedFlows {
  let child: Deno.ChildProcess | undefined;
  let ended: Promise<void> = Promise.resolve();
  let restart: ReturnType<typeof setTimeout> | undefined;
  let healthy: ReturnType<typeof setTimeout> | undefined;
  let checking: ReturnType<typeof setInterval> | undefined;
  /** Why the running stream was stopped for events turned off, to say instead of its exit. */
  let turnedOff: string | undefined;
  let live = false;
  let closed = false;
  let reported: ReportedFlow[] = [];
  let overflowed = false;
  /** The failure said last; a stream that keeps failing alike is said once, not every restart. */
  let said: string | undefined;

  const stopped = (why: string) => {
    live = false;
    if (healthy !== undefined) clearTimeout(healthy);
    if (checking !== undefined) clearInterval(checking);
    if (closed) return;
    if (why !== said) {
      said = why;
      log.warn(
        "conntrack's events for new flows stopped ({why}); looking for them every 100 ms, and trying again every {seconds} s",
        { why, seconds: restartMs / 1000 },
      );
    }
    restart = setTimeout(start, restartMs);
  };

  const report = (line: string) => {
    if (reported.length >= MAX_REPORTED) return void (overflowed = true);
    const flow = parseFlowEvent(line);
    if (flow) reported.push(flow);
  };

  function start() {
    restart = undefined;
    if (closed) return;
    // A stream that would never report a flow is none: sessions are looked for as without one.
    const why = off();
    if (why !== undefined) return stopped(why);
    try {
      child = new Deno.Command(program, {
        args: flowEventArgs(SESSION_CT_MARK),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: TOOL_ENV,
        clearEnv: true,
      }).spawn();
    } catch (error) {
      return stopped(errorText(error));
    }
    const running = child;
    live = true;
    turnedOff = undefined;
    checking = setInterval(() => {
      if (turnedOff !== undefined) {
        // Still running a round after SIGTERM: it does not get to linger.
        try {
          running.kill("SIGKILL");
        } catch { /* gone already */ }
        return;
      }
      turnedOff = off();
      if (turnedOff === undefined) return;
      // No longer a stream that reports: sessions are looked for at once, as without one.
      live = false;
      try {
        running.kill("SIGTERM");
      } catch { /* gone already */ }
    }, restartMs);
    // Back only once it has kept running: one that exits at once is the same failure again.
    healthy = setTimeout(() => {
      if (turnedOff !== undefined) return;
      if (said !== undefined) log.info("Following conntrack's events for new flows again");
      said = undefined;
    }, restartMs);
    const stderr = lastLine(running.stderr).catch(() => "");
    const lines = (async () => {
      let rest = "";
      for await (const text of running.stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + text).split("\n");
        rest = parts.pop() ?? "";
        for (const line of parts) report(line);
      }
    })().catch(() => {});
    ended = (async () => {
      const status = await running.status;
      await lines;
      const last = await stderr;
      stopped(
        turnedOff ??
          `${program} exited with ${status.signal ?? status.code}${last ? `: ${last}` : ""}`,
      );
    })();
  }

  start();
  return {
    live: () => live,
    take() {
      const flows = overflowed ? "many" : reported;
      reported = [];
      overflowed = false;
      return flows;
    },
    async close() {
      closed = true;
      live = false;
      if (restart !== undefined) clearTimeout(restart);
      if (healthy !== undefined) clearTimeout(healthy);
      if (checking !== undefined) clearInterval(checking);
      try {
        child?.kill("SIGTERM");
      } catch { /* gone already */ }
      await ended;
    },
  };
}
