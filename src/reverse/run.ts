/**
 * One reverse session as a process: read what sshd passes, load the config,
 * decide (session.ts), log, and replace the process with OpenSSH's `ssh` —
 * or exit with the refusal's status. stdout and stderr belong to the
 * client: only one-line refusals go there; logs go to syslog or the log
 * file. Everything outside the process comes through `ReversePlatform`.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { RunContext } from "../cli/command.ts";
import type { ConfigArg } from "../cli/parse.ts";
import { type Config, loadConfig } from "../config/mod.ts";
import { configSource } from "../config/source.ts";
import type { Fs } from "../config/fs.ts";
import { errorText, UserError } from "../errors.ts";
import { logger, type OpenLogs, withLogging } from "../log/mod.ts";
import { type Handoff, SSH_PATH } from "../ssh/handoff.ts";
import { readSessionInputs, SessionInputError, type SessionInputs } from "./inputs.ts";
import {
  decideSession,
  EXIT_PROXY_ERROR,
  type ReverseDeps,
  type SessionOutcome,
} from "./session.ts";

/** What a session needs from the system (platform/reverse_platform.ts implements it). */
export interface ReversePlatform {
  readonly fs: Fs;
  /** Log outputs; never stderr, which is the client's. */
  readonly openLogs: OpenLogs;
  /** One line to the client's stderr. */
  tellClient(line: string): void;
  /** Logs stray promise rejections (a socket event, say) instead of printing them. */
  catchStrayRejections(report: (reason: unknown) => void): void;
  /** The system parts of a session's decisions; `self` is the executable sudo runs. */
  sessionDeps(self: string, log: Logger): Omit<ReverseDeps, "fs" | "env" | "tellClient" | "log">;
  isExecutable(path: string): boolean;
  /** Replaces this process with `handoff`; returns only by throwing. */
  replaceProcess(handoff: Handoff): never;
}

/** Runs one session; returns the exit status, unless the process became ssh. */
export async function runReverse(
  args: ConfigArg,
  platform: ReversePlatform,
  context: RunContext,
): Promise<number> {
  platform.catchStrayRejections((reason) =>
    logger("reverse").error("Unhandled rejection: {error}", { error: String(reason) })
  );
  let inputs: SessionInputs;
  let config: Config;
  try {
    inputs = readSessionInputs(context.env);
    const source = configSource("session", args.configPath, context.env);
    config = (await loadConfig(source.path, platform.fs)).config;
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    platform.tellClient(
      `xferproxy: ${
        error instanceof SessionInputError
          ? error.message
          : "the proxy configuration is invalid; see the proxy log"
      }`,
    );
    // No usable config: syslog is the only place left to say why.
    await withLogging(undefined, platform.openLogs, () => {
      logger("reverse").error("Session refused: {error}", { error: error.message });
    });
    return EXIT_PROXY_ERROR;
  }
  const rproxy = config.server.rproxy;
  // Every log line is out before the process image is replaced.
  const outcome = await withLogging(
    rproxy,
    platform.openLogs,
    () => decide(inputs, config, platform, context),
  );
  if (outcome.kind === "exit") return outcome.exitCode;
  try {
    platform.replaceProcess(outcome.handoff);
  } catch (error) {
    platform.tellClient("xferproxy: internal error; see the proxy log");
    await withLogging(rproxy, platform.openLogs, () => {
      logger("reverse").fatal("Cannot hand over to {path}: {error}", {
        path: outcome.handoff.path,
        error: errorText(error),
      });
    });
    return EXIT_PROXY_ERROR;
  }
}

/**
 * An error `runReverse` did not expect (a bug): its stack to syslog, the one
 * place a session can always log to, never to the client.
 */
export async function logUnexpected(platform: ReversePlatform, error: unknown): Promise<void> {
  await withLogging(undefined, platform.openLogs, () => {
    logger("reverse").fatal("Internal error: {error}", {
      error: error instanceof Error ? error.stack ?? error.message : String(error),
    });
  });
}

/** The session's decisions; an unexpected error is logged with its stack and ends it with 255. */
async function decide(
  inputs: SessionInputs,
  config: Config,
  platform: ReversePlatform,
  context: RunContext,
): Promise<SessionOutcome> {
  const log = logger("reverse");
  const refused = (line: string, fields: Record<string, unknown>): SessionOutcome => {
    platform.tellClient("xferproxy: internal error; see the proxy log");
    log.fatal(line, fields);
    return { kind: "exit", exitCode: EXIT_PROXY_ERROR };
  };
  try {
    const outcome = await decideSession(inputs, config, {
      ...platform.sessionDeps(context.self, log),
      fs: platform.fs,
      env: context.env,
      tellClient: (line) => platform.tellClient(line),
      log,
    });
    if (outcome.kind === "handoff" && !platform.isExecutable(SSH_PATH)) {
      return refused("Cannot hand over: {path} is missing; install openssh-client", {
        path: SSH_PATH,
      });
    }
    return outcome;
  } catch (error) {
    return refused("Internal error: {error}", {
      error: error instanceof Error ? error.stack ?? error.message : String(error),
    });
  }
}
