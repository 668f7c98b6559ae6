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
import { flowEventArgs } from "../dnat/conntrack.ts";
import type { FlowEvents } from "../dnat/service.ts";
import { SESSION_CT_MARK } from "../dnat/types.ts";
import { errorText } from "../errors.ts";

/** How long after the stream ended it is started again. */
export const RESTART_MS = 5000;

/** The events, followed until `close`. */
export interface FollowedFlows extends FlowEvents {
  close(): Promise<void>;
}

/** Starts following; `program` is conntrack (a test may name a stand-in). */
export function followFlowEvents(
  log: Logger,
  program = "conntrack",
  restartMs = RESTART_MS,
): FollowedFlows {
  let child: Deno.ChildProcess | undefined;
  let ended: Promise<void> = Promise.resolve();
  let restart: ReturnType<typeof setTimeout> | undefined;
  let live = false;
  let seen = false;
  let closed = false;
  /** The last failure said, so one that repeats every few seconds is said once. */
  let said: string | undefined;

  const stopped = (why: string) => {
    live = false;
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

  function start() {
    restart = undefined;
    if (closed) return;
    try {
      child = new Deno.Command(program, {
        args: flowEventArgs(SESSION_CT_MARK),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      return stopped(errorText(error));
    }
    const running = child;
    live = true;
    if (said !== undefined) log.info("Following conntrack's events for new flows again");
    said = undefined;
    const stderr = new Response(running.stderr).text().catch(() => "");
    const lines = (async () => {
      // A chunk is one or more events: all this side needs is that a flow appeared.
      for await (const _chunk of running.stdout) seen = true;
    })().catch(() => {});
    ended = (async () => {
      const status = await running.status;
      await lines;
      const last = (await stderr).trim().split("\n").at(-1) ?? "";
      stopped(`${program} exited with ${status.signal ?? status.code}${last ? `: ${last}` : ""}`);
    })();
  }

  start();
  return {
    live: () => live,
    take() {
      const was = seen;
      seen = false;
      return was;
    },
    async close() {
      closed = true;
      live = false;
      if (restart !== undefined) clearTimeout(restart);
      try {
        child?.kill("SIGTERM");
      } catch { /* gone already */ }
      await ended;
    },
  };
}
