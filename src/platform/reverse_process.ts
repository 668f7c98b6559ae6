/**
 * Reverse mode as a process: sshd's ForceCommand, once per session, as the
 * logged-in user. Reads what sshd passes, decides the session, writes the
 * log, and replaces itself with OpenSSH's `ssh` (or exits with the refusal's
 * status). stdout and stderr belong to the client: only one-line refusals
 * go there; logs go to syslog or the log file.
 * @module
 */

import { type Config, ConfigError, loadConfig } from "../config/mod.ts";
import { logger, setupLogging, teardownLogging } from "../log/mod.ts";
import { openLogOutputs } from "./log_outputs.ts";
import { openSharedJson } from "./locked_file.ts";
import { writeStderrLine } from "./session_io.ts";
import { realFs } from "./fs.ts";
import { dialTcp } from "./tcp.ts";
import { sudoDnatCall } from "./dnat_call.ts";
import { ExecError, replaceProcess } from "./exec.ts";
import { createBalancer } from "../balancer/balancer.ts";
import { readSessionInputs, SessionInputError, type SessionInputs } from "../reverse/inputs.ts";
import { decideSession, EXIT_PROXY_ERROR, type SessionOutcome } from "../reverse/session.ts";
import { SSH_PATH } from "../ssh/handoff.ts";
import { probeSsh } from "../ssh/probe.ts";

/** Where the sessions' shared balancer state lives inside the state directory. */
export const BALANCER_SUBDIRECTORY = "balancer";

/** Runs one session; returns the exit status, unless the process became ssh. */
export async function runReverse(configPath: string, self: string): Promise<number> {
  const env = (name: string) => Deno.env.get(name);
  // A stray rejection (e.g. from a socket event) is logged, never printed to the client.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    logger("reverse").error("Unhandled rejection: {error}", { error: String(event.reason) });
  });
  let inputs: SessionInputs;
  let config: Config;
  try {
    inputs = readSessionInputs(env);
    config = (await loadConfig(configPath, realFs)).config;
  } catch (error) {
    if (!(error instanceof SessionInputError || error instanceof ConfigError)) throw error;
    writeStderrLine(
      `xferproxy: ${
        error instanceof SessionInputError
          ? error.message
          : "the proxy configuration is invalid; see the proxy log"
      }`,
    );
    // No usable config: syslog is the only place left to say why.
    const early = openLogOutputs({});
    await setupLogging({ logLevel: 0 }, early);
    logger("reverse").error("Session refused: {error}", { error: error.message });
    await teardownLogging();
    await early.close();
    return EXIT_PROXY_ERROR;
  }
  const rproxy = config.server.rproxy;
  const outputs = openLogOutputs(rproxy.logDirectory ? { directory: rproxy.logDirectory } : {});
  await setupLogging({ logLevel: rproxy.logLevel }, outputs);
  const log = logger("reverse");
  let outcome: SessionOutcome;
  try {
    outcome = await decideSession(inputs, config, {
      fs: realFs,
      pid: Deno.pid,
      uid: Deno.uid() ?? -1,
      newId: () => crypto.randomUUID(),
      balancer: (dir) =>
        createBalancer(
          openSharedJson(`${dir}/${BALANCER_SUBDIRECTORY}`, "balancer", (path, error) =>
            log.warn("Ignoring corrupt balancer state {path}: {error}", {
              path,
              error: error.message,
            })),
          Date.now,
        ),
      probe: (endpoint, hostKeyAlgorithms, timeoutMs) =>
        probeSsh(() => dialTcp(endpoint.ip.text, endpoint.port), {
          hostKeyAlgorithms,
          timeoutMs,
          label: `${
            endpoint.ip.family === 6 ? `[${endpoint.ip.text}]` : endpoint.ip.text
          }:${endpoint.port}`,
        }),
      udp: sudoDnatCall({
        binary: self,
        log: logger("reverse", "udp"),
        tellClient: writeStderrLine,
      }),
      pty: Deno.stdin.isTerminal(),
      env,
      tellClient: writeStderrLine,
      log,
    });
    if (outcome.kind === "handoff" && !isExecutable(SSH_PATH)) {
      writeStderrLine("xferproxy: internal error; see the proxy log");
      log.fatal("Cannot hand over: {path} is missing; install openssh-client", { path: SSH_PATH });
      outcome = { kind: "exit", exitCode: EXIT_PROXY_ERROR };
    }
  } catch (error) {
    writeStderrLine("xferproxy: internal error; see the proxy log");
    log.fatal("Internal error: {error}", {
      error: error instanceof Error ? error.stack ?? error.message : String(error),
    });
    outcome = { kind: "exit", exitCode: EXIT_PROXY_ERROR };
  }
  // Every log line is out before the process image is replaced.
  await teardownLogging();
  await outputs.close();
  if (outcome.kind === "exit") return outcome.exitCode;
  try {
    replaceProcess(outcome.handoff);
  } catch (error) {
    writeStderrLine("xferproxy: internal error; see the proxy log");
    const again = openLogOutputs(rproxy.logDirectory ? { directory: rproxy.logDirectory } : {});
    await setupLogging({ logLevel: rproxy.logLevel }, again);
    logger("reverse").fatal("Cannot hand over to {path}: {error}", {
      path: outcome.handoff.path,
      error: error instanceof ExecError ? error.message : String(error),
    });
    await teardownLogging();
    await again.close();
    return EXIT_PROXY_ERROR;
  }
}

function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}
