/**
 * One reverse session's decisions: inputs → rule → command policy → account
 * and key → internal server (probed, with failover) → UDP forwarding for
 * FASP commands → the hand-off to OpenSSH's `ssh`. Nothing here moves the
 * session's bytes: run.ts replaces the process with what this returns.
 * Everything outside the process comes in through `ReverseDeps`.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { type Config, expandKeyfile, InvalidUserError, type ReverseRule } from "../config/mod.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { parseKnownHosts } from "../ssh/known_hosts.ts";
import { checkCommand } from "../ssh/policy.ts";
import { buildHandoff, type Handoff, HandoffError } from "../ssh/handoff.ts";
import { classifyPrivateKey, keyModeProblem } from "../ssh/private_key.ts";
import type { Fs } from "../config/fs.ts";
import type { SessionInputs } from "./inputs.ts";
import { matchRule } from "./rules.ts";
import { clientText } from "../log/format.ts";
import { chooseUpstream, HostKeyError, NoUpstreamError, type Prober } from "./upstream.ts";
import { usesUdp } from "./udp.ts";
import type { Registrar } from "./registrar.ts";

/** Everything a session touches. */
export interface ReverseDeps {
  readonly fs: Fs;
  /** This process: its pid owns the session's UDP rules, its uid matters for key modes. */
  readonly pid: number;
  readonly uid: number;
  /** The session's registrar: the DNAT service when it runs, sudo and shared files otherwise. */
  readonly registrar: (config: Config) => Promise<Registrar>;
  readonly probe: Prober;
  /** sshd gave the session a pty (the client asked for one). */
  readonly pty: boolean;
  /** The session's environment (USER, HOME, TERM for the hand-off). */
  readonly env: (name: string) => string | undefined;
  /** One line to the client's stderr. */
  readonly tellClient: (line: string) => void;
  readonly log: Logger;
  /** Who decides: the session's own process, or the DNAT service for it. */
  readonly decidedBy?: "session" | "service";
}

/** Replace the process with `handoff`, or exit with `exitCode`. */
export type SessionOutcome =
  | { readonly kind: "handoff"; readonly handoff: Handoff }
  | { readonly kind: "exit"; readonly exitCode: number };

/** Exit status for proxy and connection errors, as ssh uses. */
export const EXIT_PROXY_ERROR = 255;
/** Exit status for a command the policy refused. */
export const EXIT_REFUSED = 1;

/** Decides one session for a loaded config. */
export async function decideSession(
  inputs: SessionInputs,
  config: Config,
  deps: ReverseDeps,
): Promise<SessionOutcome> {
  const registrar = await deps.registrar(config);
  try {
    return await decideWith(registrar, inputs, config, deps);
  } finally {
    registrar.close();
  }
}

async function decideWith(
  registrar: Registrar,
  inputs: SessionInputs,
  config: Config,
  deps: ReverseDeps,
): Promise<SessionOutcome> {
  const session = registrar.id;
  const log = deps.log.with({ session, user: inputs.user });
  const refuse = (
    clientLine: string,
    logLine: string,
    fields: Record<string, unknown> = {},
    exitCode = EXIT_PROXY_ERROR,
  ): SessionOutcome => {
    deps.tellClient(`xferproxy: ${clientLine}`);
    log.error(logLine, { ...fields, exit: exitCode });
    return { kind: "exit", exitCode };
  };

  log.info("Received connection request from {client}", {
    client: inputs.clientIp.text,
    proxy: `${inputs.proxyIp.text}:${inputs.proxyPort}`,
    request: describeRequest(inputs),
  });
  if (registrar.draining) {
    return refuse(
      "this proxy is not taking new sessions (drained for maintenance); connect again",
      "Refused: this node is draining (xferproxy dnat undrain ends it)",
    );
  }
  if (inputs.badDialled) {
    log.warn("Ignoring malformed XFERPROXY_HOST {value}", { value: clientText(inputs.badDialled) });
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
      request: clientText(describeRequest(inputs)),
      reason: verdict.reason,
      exit: EXIT_REFUSED,
    });
    return { kind: "exit", exitCode: EXIT_REFUSED };
  }

  const upstreamUser = rule.squashUser ?? inputs.user;
  const keyPath = await usableKey(rule, inputs.user, deps);
  if (typeof keyPath !== "string") {
    return refuse("cannot log in to the internal server (proxy key problem)", "Refused: {detail}", {
      detail: keyPath.problem,
    });
  }
  let knownHostsText: string;
  try {
    knownHostsText = await deps.fs.readTextFile(rproxy.knownHosts);
  } catch (error) {
    return refuse(
      "cannot verify the internal server (no known_hosts)",
      "Refused: cannot read known_hosts {path}: {detail}",
      { path: rproxy.knownHosts, detail: describeError(error) },
    );
  }

  let chosen;
  try {
    chosen = await chooseUpstream(rule, {
      knownHosts: parseKnownHosts(knownHostsText).entries,
      hosts: registrar.hosts,
      probe: deps.probe,
      log: ruleLog,
    });
  } catch (error) {
    if (error instanceof HostKeyError) {
      return refuse(
        "host key verification of the internal server failed",
        "Refused: {detail}; presented {presented}, known_hosts has {expected}",
        {
          detail: error.message,
          presented: error.presented,
          expected: error.expected.length ? error.expected.join(",") : "none",
        },
      );
    }
    if (error instanceof NoUpstreamError) {
      return refuse("internal server unavailable", "Refused: {detail}", { detail: error.message });
    }
    throw error;
  }
  const server = formatEndpoint(chosen.endpoint);
  const sessionLog = ruleLog.with({ upstream: server, upstream_user: upstreamUser });

  let handoff: Handoff;
  try {
    handoff = buildHandoff({
      upstream: chosen.endpoint,
      user: upstreamUser,
      keyPath,
      knownHostsPath: rproxy.knownHosts,
      hostKeyAlgorithms: chosen.hostKeyAlgorithms,
      connectTimeout: rule.connectTimeout,
      request: inputs.request,
      pty: deps.pty,
      logLevel: rproxy.logLevel,
      env: deps.env,
    });
  } catch (error) {
    if (!(error instanceof HandoffError)) throw error;
    return refuse("the proxy configuration is invalid; see the proxy log", "Refused: {detail}", {
      detail: error.message,
    });
  }

  // FASP sends UDP as soon as ssh has negotiated it upstream: the rules must be in place first.
  const udp = await registrar.register({
    rule,
    upstream: chosen.endpoint,
    upstreamIndex: chosen.index,
    udp: usesUdp(rule, inputs.request),
    user: inputs.user,
  });
  sessionLog.info("Handing over to ssh for server {server}", {
    server,
    pid: deps.pid,
    udp,
    via: registrar.via,
    ...(chosen.fingerprint ? { host_key: chosen.fingerprint } : {}),
    decided_by: deps.decidedBy ?? "session",
  });
  return { kind: "handoff", handoff };
}

/**
 * The keyfile path, once it is known that ssh can use it (after the hand-off
 * ssh could only fail without telling the client why), or the problem.
 */
async function usableKey(
  rule: ReverseRule,
  user: string,
  deps: ReverseDeps,
): Promise<string | { problem: string }> {
  if (!rule.keyfile) return { problem: `rule ${rule.index} has no <keyfile>` };
  let path: string;
  try {
    path = expandKeyfile(rule.keyfile, user);
  } catch (error) {
    if (error instanceof InvalidUserError) return { problem: error.message };
    throw error;
  }
  let text: string;
  let info;
  try {
    text = await deps.fs.readTextFile(path);
    info = await deps.fs.stat(path);
  } catch (error) {
    return { problem: `cannot read keyfile: ${describeError(error)}` };
  }
  const key = classifyPrivateKey(text, path);
  if (!key.ok) return { problem: key.message };
  const mode = keyModeProblem(info, deps.uid, path);
  return mode ? { problem: mode } : path;
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
