/**
 * The hand-off: the exact program, argv and environment a reverse session
 * replaces itself with once every decision is made. OpenSSH's `ssh` then
 * carries the bytes, as in a native double hop. Pure.
 *
 * Nothing of the user's or the system's ssh configuration applies (`-F
 * none`): every option that could run a command, forward a port, use an
 * agent, trust a new host key or read another key is set explicitly.
 * @module
 */

import type { IpEndpoint } from "../net/endpoint.ts";
import type { ChannelRequest } from "./policy.ts";

/** OpenSSH's client, where Debian and Red Hat install it. */
export const SSH_PATH = "/usr/bin/ssh";
/** argv[0] of a handed-off session, so `ps` shows what it is. */
export const SESSION_ARGV0 = "xferproxy-ssh";

/** What the hand-off needs to know. */
export interface HandoffSpec {
  readonly upstream: IpEndpoint;
  /** The account on the internal server. */
  readonly user: string;
  readonly keyPath: string;
  readonly knownHostsPath: string;
  /** Host key algorithms known_hosts pins for the server (the probe offered the same). */
  readonly hostKeyAlgorithms: readonly string[];
  readonly connectTimeout: number;
  readonly request: ChannelRequest;
  /** The client has a pty: request one upstream (`-tt`). */
  readonly pty: boolean;
  /** rproxy log_level: ssh logs to syslog at VERBOSE (0, 1) or DEBUG (2); ERROR with a pty. */
  readonly logLevel: 0 | 1 | 2;
  /** The session's environment, from which only a few safe values are kept. */
  readonly env: (name: string) => string | undefined;
}

/** The program to exec, its argv (argv[0] included) and environment (`NAME=value`). */
export interface Handoff {
  readonly path: string;
  readonly argv: readonly string[];
  readonly env: readonly string[];
}

/** A value that cannot be given to ssh safely. */
export class HandoffError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HandoffError";
  }
}

/** A path for an ssh option: quoted (it may hold spaces), `%` doubled (ssh expands tokens). */
function pathValue(what: string, path: string): string {
  // deno-lint-ignore no-control-regex
  if (!path.startsWith("/") || /["\\\u0000-\u001f\u007f]/.test(path)) {
    throw new HandoffError(
      `${what} path ${
        JSON.stringify(path)
      } cannot be passed to ssh: use an absolute path without quotes, backslashes or control characters`,
    );
  }
  return `"${path.replaceAll("%", "%%")}"`;
}

/** Options that hold whatever the rule decides; see the module comment. */
function fixedOptions(spec: HandoffSpec): string[] {
  const options: Record<string, string> = {
    BatchMode: "yes",
    IdentitiesOnly: "yes",
    IdentityAgent: "none",
    IdentityFile: pathValue("Keyfile", spec.keyPath),
    PreferredAuthentications: "publickey",
    PubkeyAuthentication: "yes",
    PasswordAuthentication: "no",
    KbdInteractiveAuthentication: "no",
    HostbasedAuthentication: "no",
    StrictHostKeyChecking: "yes",
    UserKnownHostsFile: pathValue("known_hosts", spec.knownHostsPath),
    GlobalKnownHostsFile: "/dev/null",
    UpdateHostKeys: "no",
    CheckHostIP: "no",
    HostKeyAlgorithms: spec.hostKeyAlgorithms.join(","),
    ConnectTimeout: String(spec.connectTimeout),
    ConnectionAttempts: "1",
    ServerAliveInterval: "15",
    ServerAliveCountMax: "4",
    ClearAllForwardings: "yes",
    ForwardAgent: "no",
    ForwardX11: "no",
    PermitLocalCommand: "no",
    ControlMaster: "no",
    ControlPath: "none",
    ProxyCommand: "none",
    ProxyJump: "none",
    Tunnel: "no",
    // With a pty, "~C" would open ssh's command line (port forwarding) to the client.
    EscapeChar: "none",
    // ssh's own messages go to syslog, never to the client's stream (-y). With a pty, ssh
    // writes "Connection to <internal address> closed." to the terminal at level INFO and up.
    LogLevel: spec.pty ? "ERROR" : spec.logLevel === 2 ? "DEBUG" : "VERBOSE",
    SyslogFacility: "DAEMON",
  };
  return Object.entries(options).flatMap(([name, value]) => ["-o", `${name}=${value}`]);
}

/** The environment ssh runs with: nothing the client or sshd set beyond these. */
function handoffEnv(spec: HandoffSpec): string[] {
  const env = ["PATH=/usr/bin:/bin"];
  for (const name of ["USER", "LOGNAME", "HOME"] as const) {
    const value = spec.env(name);
    // deno-lint-ignore no-control-regex
    if (value && !/[\u0000-\u001f]/.test(value)) env.push(`${name}=${value}`);
  }
  const term = spec.env("TERM");
  if (spec.pty && term && /^[A-Za-z0-9._+-]{1,64}$/.test(term)) env.push(`TERM=${term}`);
  return env;
}

/**
 * Builds the hand-off for a decided session.
 * @throws {HandoffError} when a configured path cannot be given to ssh
 */
export function buildHandoff(spec: HandoffSpec): Handoff {
  if (spec.hostKeyAlgorithms.length === 0) {
    throw new HandoffError("No host key algorithm is pinned for the internal server");
  }
  const request = spec.request;
  const argv = [
    SESSION_ARGV0,
    "-F",
    "none",
    ...fixedOptions(spec),
    "-y",
    "-p",
    String(spec.upstream.port),
    "-l",
    spec.user,
    spec.pty ? "-tt" : "-T",
    ...(request.kind === "subsystem" ? ["-s"] : []),
    "--",
    spec.upstream.ip.text,
    ...(request.kind === "exec" ? [request.command] : []),
    ...(request.kind === "subsystem" ? [request.name] : []),
  ];
  return { path: SSH_PATH, argv, env: handoffEnv(spec) };
}
