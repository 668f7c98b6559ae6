/**
 * The session side of UDP forwarding while the DNAT service is down: one
 * short `sudo -n xferproxy dnat add …` that identifies the session from the
 * kernel, validates, installs and returns. The rules then belong to this
 * process (pid and start time), which keeps its pid when it becomes ssh;
 * the next session start (or the service, once it runs) removes them when
 * it ends. If the call is refused
 * or fails, the SSH session goes on and the client is told UDP forwarding is
 * unavailable.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { parseAddReply, sudoAddArgv } from "../dnat/contract.ts";
import type { UdpForwarder } from "../reverse/udp.ts";
import { udpUnavailable } from "../reverse/registrar.ts";

/** How to reach the helper. */
export interface DnatCallOptions {
  /** Absolute path of this xferproxy executable: what sudoers allows. */
  readonly binary: string;
  readonly log: Logger;
  readonly tellClient: (line: string) => void;
}

/** The helper may wait for another session of the same client to learn its port. */
const CALL_TIMEOUT_MS = 20_000;

/** A forwarder that registers sessions through `sudo xferproxy dnat add`. */
export function sudoDnatCall(options: DnatCallOptions): UdpForwarder {
  return {
    async register(session) {
      const args = sudoAddArgv(options.binary, {
        rule: session.rule.index,
        host: session.upstreamIndex,
        server: session.upstream,
      });
      let result: Deno.CommandOutput;
      try {
        result = await new Deno.Command("sudo", {
          args,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
        }).output();
      } catch (error) {
        return unavailable(options, `cannot run sudo: ${String(error)}`);
      }
      const decoder = new TextDecoder();
      const reply = parseAddReply(decoder.decode(result.stdout));
      if (reply?.event === "refused") return unavailable(options, `refused: ${reply.reason}`);
      if (reply?.event === "failed") return unavailable(options, reply.reason);
      if (!reply || !result.success) {
        // No answer from the helper: sudo refused, or it died or timed out.
        const why = decoder.decode(result.stderr).trim().split("\n")[0] ||
          (result.signal
            ? "the helper did not answer in time"
            : `the helper exited ${result.code}`);
        return unavailable(options, why);
      }
      options.log.debug("UDP forwarding installed: {proxy} to {server}", {
        proxy: reply.proxy,
        server: reply.server,
        filtering: reply.filtering,
        dnat_session: reply.session,
      });
      return true;
    },
  };
}

function unavailable(options: DnatCallOptions, why: string): false {
  udpUnavailable(options.log, options.tellClient, why);
  return false;
}
