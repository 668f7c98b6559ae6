/**
 * One reverse session, start to end: inputs → config → rule → policy →
 * upstream (with failover) → UDP forwarding → relay → log → exit status.
 * Everything outside the process comes in through `ReverseDeps`.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { type Config, expandKeyfile, InvalidUserError, type ReverseRule } from "../config/mod.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import type { Balancer } from "../balancer/balancer.ts";
import type { PtyRequest, UpstreamConnection, UpstreamSpec } from "../ssh/bridge.ts";
import { UpstreamError } from "../ssh/bridge.ts";
import { parseKnownHosts } from "../ssh/known_hosts.ts";
import { checkCommand } from "../ssh/policy.ts";
import { type ClientStdio, relay } from "../ssh/relay.ts";
import type { Fs } from "../platform/fs.ts";
import { type SessionInputs } from "./inputs.ts";
import { matchRule } from "./rules.ts";
import { chooseUpstream, NoUpstreamError } from "./upstream.ts";
import type { UdpForwarder, UdpForwarding } from "./udp.ts";

/** The client's terminal, when it asked for a pty. */
export interface ClientTerminal {
  readonly term: string;
  size(): { rows: number; cols: number };
  setRaw(raw: boolean): void;
  /** Calls back on window changes; returns the unsubscribe function. */
  onResize(callback: () => void): () => void;
}

/** Everything a session touches. */
export interface ReverseDeps {
  readonly fs: Fs;
  readonly stdio: ClientStdio;
  readonly terminal?: ClientTerminal;
  /** Fires on SIGHUP/SIGTERM/SIGINT from sshd. */
  readonly abort: AbortSignal;
  readonly now: () => number;
  readonly newId: () => string;
  readonly balancer: (stateDirectory: string) => Balancer;
  readonly connect: (spec: UpstreamSpec) => Promise<UpstreamConnection>;
  readonly udp: UdpForwarder;
  /** One line to the client's stderr. */
  readonly tellClient: (line: string) => void;
  readonly log: Logger;
}

/** How the session ended, for the process exit. */
export interface SessionOutcome {
  readonly exitCode: number;
}

/** Exit status for proxy and connection errors, as ssh uses. */
export const EXIT_PROXY_ERROR = 255;
/** Exit status for a command the policy refused. */
export const EXIT_REFUSED = 1;

/** Runs one session for a loaded config. */
export async function runSession(
  inputs: SessionInputs,
  config: Config,
  deps: ReverseDeps,
): Promise<SessionOutcome> {
  const started = deps.now();
  const session = deps.newId();
  const log = deps.log.with({ session, user: inputs.user });
  const refuse = (
    clientLine: string,
    logLine: string,
    fields: Record<string, unknown> = {},
    exitCode = EXIT_PROXY_ERROR,
  ) => {
    deps.tellClient(`xferproxy: ${clientLine}`);
    log.error(logLine, { ...fields, exit: exitCode });
    return { exitCode };
  };

  log.info("Received connection request from {client}", {
    client: inputs.clientIp.text,
    proxy: `${inputs.proxyIp.text}:${inputs.proxyPort}`,
    request: describeRequest(inputs),
  });
  if (inputs.badDialled) {
    log.warn("Ignoring malformed XFERPROXY_HOST {value}", { value: inputs.badDialled });
  }
  const rproxy = config.server.rproxy;
  if (!rproxy.enabled) {
    return refuse(
      "reverse proxy is disabled on this server",
      "Refused: <rproxy><enabled> is false",
    );
  }

  const rule = matchRule(rproxy.rules, inputs);
  if (!rule) {
    return refuse(
      `no proxy rule for ${inputs.dialled?.name ?? inputs.proxyIp.text}`,
      "Refused: no rule matches proxy address {proxy} (host {dialled})",
      { proxy: inputs.proxyIp.text, dialled: inputs.dialled?.name ?? "-" },
    );
  }
  const ruleLog = log.with({ rule: rule.index });
  const verdict = checkCommand(rule.allowedCommands, inputs.request);
  if (!verdict.allowed) {
    deps.tellClient(`xferproxy: ${verdict.reason}`);
    ruleLog.error("Refused command {request}: {reason}", {
      request: describeRequest(inputs),
      reason: verdict.reason,
      exit: EXIT_REFUSED,
    });
    return { exitCode: EXIT_REFUSED };
  }

  const upstreamUser = rule.squashUser ?? inputs.user;
  let keyPath: string;
  let privateKey: string;
  let knownHostsText: string;
  try {
    keyPath = keyfileFor(rule, inputs.user);
    privateKey = await deps.fs.readTextFile(keyPath);
  } catch (error) {
    const detail = error instanceof InvalidUserError
      ? error.message
      : `cannot read keyfile: ${describeError(error)}`;
    return refuse("cannot log in to the internal server (proxy key problem)", "Refused: {detail}", {
      detail,
    });
  }
  try {
    knownHostsText = await deps.fs.readTextFile(rproxy.knownHosts);
  } catch (error) {
    return refuse(
      "cannot verify the internal server (no known_hosts)",
      "Refused: cannot read known_hosts {path}: {detail}",
      {
        path: rproxy.knownHosts,
        detail: describeError(error),
      },
    );
  }

  let chosen;
  try {
    chosen = await chooseUpstream(rule, {
      username: upstreamUser,
      privateKey,
      keyPath,
      knownHosts: parseKnownHosts(knownHostsText).entries,
      balancer: deps.balancer(config.server.stateDirectory),
      connect: deps.connect,
      log: ruleLog,
    });
  } catch (error) {
    if (error instanceof UpstreamError && error.kind === "hostkey") {
      const v = error.verdict;
      return refuse(
        "host key verification of the internal server failed",
        "Refused: {detail}; presented {presented}, known_hosts has {expected}",
        {
          detail: error.message,
          presented: v && !v.ok ? v.presented : "?",
          expected: v && !v.ok && v.expected.length ? v.expected.join(",") : "none",
        },
      );
    }
    if (error instanceof UpstreamError && error.kind === "key") {
      return refuse(
        "cannot log in to the internal server (proxy key problem)",
        "Refused: {detail}",
        { detail: error.message },
      );
    }
    if (error instanceof UpstreamError && error.kind === "auth") {
      return refuse("the internal server refused the login", "Refused: {detail}", {
        detail: error.message,
      });
    }
    if (error instanceof NoUpstreamError || error instanceof UpstreamError) {
      return refuse("internal server unavailable", "Refused: {detail}", { detail: error.message });
    }
    throw error;
  }
  const server = formatEndpoint(chosen.endpoint);
  const sessionLog = ruleLog.with({ upstream: server, upstream_user: upstreamUser });
  sessionLog.info("Established SSH connection with server {server}", { server });

  // Rules go in before the relay starts: the client may send UDP as soon as it has
  // negotiated over SSH, and must find them in place.
  let forwarding: UdpForwarding | undefined;
  try {
    forwarding = await deps.udp.open({
      id: session,
      clientIp: inputs.clientIp,
      proxyIp: inputs.proxyIp,
      rule,
      upstream: chosen.endpoint,
      upstreamIndex: chosen.index,
    });
    return await bridge(chosen.connection, inputs, deps, sessionLog, started);
  } finally {
    await forwarding?.close().catch((error) =>
      sessionLog.error("Removing UDP forwarding failed: {error}", { error: String(error) })
    );
    chosen.connection.end();
  }
}

async function bridge(
  connection: UpstreamConnection,
  inputs: SessionInputs,
  deps: ReverseDeps,
  log: Logger,
  started: number,
): Promise<SessionOutcome> {
  const terminal = deps.terminal;
  let pty: PtyRequest | undefined;
  if (terminal) pty = { term: terminal.term, ...terminal.size() };
  let channel;
  try {
    channel = await connection.open(inputs.request, pty);
  } catch (error) {
    deps.tellClient("xferproxy: the internal server refused the session");
    log.error("Refused: {detail}", { detail: describeError(error), exit: EXIT_PROXY_ERROR });
    return { exitCode: EXIT_PROXY_ERROR };
  }
  terminal?.setRaw(true);
  const unsubscribe = terminal?.onResize(() => {
    const { rows, cols } = terminal.size();
    channel.stream.setWindow(rows, cols, 0, 0);
    log.trace("Window changed to {cols}x{rows}", { rows, cols });
  });
  let result;
  try {
    result = await relay(channel, deps.stdio, deps.abort);
  } finally {
    unsubscribe?.();
    terminal?.setRaw(false);
  }
  // A command killed by a signal ends the session with 255, as OpenSSH's ssh does: the
  // signal itself cannot be passed on, sshd runs this process through the user's shell.
  const outcome: SessionOutcome = { exitCode: result.exitCode ?? EXIT_PROXY_ERROR };
  const reason = result.ended === "eof"
    ? "EOF"
    : result.ended === "client-gone"
    ? "client gone"
    : "signal";
  log.info(`Connection closed (${reason})`, {
    bytes_up: result.bytesUp,
    bytes_down: result.bytesDown,
    duration_ms: deps.now() - started,
    exit: outcome.exitCode,
    ...(result.exitSignal ? { signal: result.exitSignal } : {}),
  });
  return outcome;
}

function keyfileFor(rule: ReverseRule, user: string): string {
  if (!rule.keyfile) throw new Error(`rule ${rule.index} has no <keyfile>`);
  return expandKeyfile(rule.keyfile, user);
}

function describeRequest(inputs: SessionInputs): string {
  const r = inputs.request;
  return r.kind === "exec" ? r.command : r.kind === "subsystem" ? `subsystem:${r.name}` : "shell";
}

function describeError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "file not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return error instanceof Error ? error.message : String(error);
}
