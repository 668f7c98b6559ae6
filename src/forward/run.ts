/**
 * `xferproxy forward …` as a process: the daemon, its API users, and the
 * client helper used as OpenSSH's ProxyCommand. Everything outside the
 * process comes through `ForwardPlatform`; failures are thrown as
 * `UserError`s for main.ts to print (the daemon logs them too).
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { RunContext } from "../cli/command.ts";
import { EXIT } from "../cli/exit.ts";
import { type Config, formatPosition, loadConfig } from "../config/mod.ts";
import { configSource } from "../config/source.ts";
import type { Fs } from "../config/fs.ts";
import type { Conntrack } from "../dnat/conntrack.ts";
import type { DnatBackend } from "../dnat/types.ts";
import { ServiceStartError } from "../errors.ts";
import { logger, type OpenLogs, withLogging } from "../log/mod.ts";
import type { ProxyUrl } from "./args.ts";
import type { ForwardArgs } from "./args.ts";
import { type DaemonHost, runDaemon } from "./daemon.ts";
import type { RegistryStore } from "../dnat/deps.ts";
import { connectPassword } from "./password.ts";
import { manageUsers } from "./user_cmd.ts";
import { emptyUsers, parseUsers, serializeUsers, type UsersFile } from "./users.ts";

/** What `forward connect` connects to. */
export interface ConnectOptions {
  readonly proxy: ProxyUrl;
  readonly password?: string;
  readonly destination: string;
  readonly sshPort: number;
  readonly udpPort: number;
  readonly printMapping: boolean;
  readonly cacert?: string;
  /** One line to stderr. */
  readonly say: (line: string) => void;
}

/** What forward mode needs from the system (platform/forward_platform.ts implements it). */
export interface ForwardPlatform {
  readonly fs: Fs;
  /** The daemon's log outputs (also stderr: the journal). */
  readonly openLogs: OpenLogs;
  /** The client helper: relays stdio through a session; resolves to its exit status. */
  connect(options: ConnectOptions): Promise<number>;
  /** The users file's text, undefined when it does not exist yet. */
  readUsers(path: string): Promise<string | undefined>;
  /** Replaces the users file (root-only). */
  writeUsers(path: string, text: string): Promise<void>;
  readStdin(): Promise<string>;
  newPassword(): string;
  /** Logs stray promise rejections instead of ending the daemon. */
  catchStrayRejections(report: (reason: unknown) => void): void;
  /** The daemon's host: sockets, netfilter, signals; `close` releases it. */
  daemonHost(
    config: Config,
    loadUsers: () => Promise<UsersFile>,
  ): Promise<DaemonParts & { close(): void }>;
}

/** What `runDaemon` runs on. */
export interface DaemonParts {
  readonly host: DaemonHost;
  readonly backend: DnatBackend;
  readonly conntrack: Conntrack;
  /** The DNAT registry and its lock, shared with reverse sessions and the DNAT service. */
  readonly store: RegistryStore;
}

/** Runs `xferproxy forward …`; returns the exit status. */
export async function runForward(
  args: ForwardArgs,
  platform: ForwardPlatform,
  context: RunContext,
): Promise<number> {
  const { command } = args;
  if (command.action === "connect") {
    const { password, warnings } = await connectPassword({
      ...(command.passwordFile !== undefined ? { passwordFile: command.passwordFile } : {}),
      ...(command.proxy.password !== undefined ? { urlPassword: command.proxy.password } : {}),
    }, { env: context.env, fs: platform.fs });
    for (const warning of warnings) context.output.err(`xferproxy: ${warning}\n`);
    return await platform.connect({
      ...command,
      ...(password !== undefined ? { password } : {}),
      say: (line) => context.output.err(line + "\n"),
    });
  }
  const configPath = configSource("administrator", args.configPath, context.env).path;
  const { config, warnings } = await loadConfig(configPath, platform.fs);
  const usersFile = config.server.proxy.usersFile;
  const loadUsers = async () => {
    const text = await platform.readUsers(usersFile);
    return text === undefined ? emptyUsers() : parseUsers(text, usersFile);
  };
  if (command.action !== "serve") {
    return await manageUsers(command, {
      load: loadUsers,
      save: (users) => platform.writeUsers(usersFile, serializeUsers(users)),
      readStdin: () => platform.readStdin(),
      generatePassword: () => platform.newPassword(),
      out: (text) => context.output.out(text),
    });
  }
  return await withLogging(config.server.rproxy, platform.openLogs, async () => {
    const log = logger("forward");
    // What check config warns about, once; the certificate is said by the daemon, with its
    // fingerprint.
    for (const warning of warnings.filter((w) => w.tag !== "cert_file")) {
      log.warn("Config {path}: {problem}", { path: configPath, problem: formatPosition(warning) });
    }
    // Nothing a client does may end the daemon: a stray rejection is logged, never fatal.
    platform.catchStrayRejections((reason) =>
      log.error("Unhandled rejection: {error}", { error: String(reason) })
    );
    return await serve(config, platform, loadUsers, log);
  });
}

async function serve(
  config: Config,
  platform: ForwardPlatform,
  loadUsers: () => Promise<UsersFile>,
  log: Logger,
): Promise<number> {
  try {
    const parts = await platform.daemonHost(config, loadUsers);
    try {
      await runDaemon(config, { ...parts, log });
    } finally {
      parts.close();
    }
    return EXIT.ok;
  } catch (error) {
    // Logged once, as Aspera Proxy's line, by withLogging.
    throw ServiceStartError.from(error);
  }
}
