/**
 * `xferproxy dnat …` as a process: `add` (a session's privileged call
 * through sudo), `del`, `list`, `reap`, and `serve` (the DNAT service).
 * Through sudo it trusts nothing the caller chose: only the system config,
 * read through the platform's trusted reader, and only the caller's own
 * sessions. Failures are logged here and thrown as `UserError`s for
 * main.ts to print; `add` also answers them as a JSON event.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { RunContext } from "../cli/command.ts";
import { resolveConfigPath } from "../cli/parse.ts";
import { EXIT } from "../cli/exit.ts";
import { type Config, DEFAULT_CONFIG_PATH, loadConfig } from "../config/mod.ts";
import type { Fs } from "../config/fs.ts";
import { errorText, ServiceStartError, UserError } from "../errors.ts";
import { logger, type OpenLogs, withLogging } from "../log/mod.ts";
import type { Balancer } from "../balancer/balancer.ts";
import { formatEndpoint, type IpEndpoint } from "../net/endpoint.ts";
import { NotAuthorizedError } from "./errors.ts";
import type { DnatArgs } from "./contract.ts";
import { type AddRequest, formatAddReply, sudoCallerUid } from "./contract.ts";
import { deleteSession, type HelperDeps, listSessions, reapSessions } from "./helper.ts";
import { type Caller, type Claimant, type DnatDeps, install } from "./manager.ts";
import { identifySession, rootNamedOwner, sudoCaller } from "./owner.ts";
import type { ProcReader } from "./procfs.ts";
import { runService, type ServiceStatus } from "./service.ts";
import {
  type ExitWatch,
  type SessionConnection,
  sessionService,
  type SshCounters,
} from "./service_sessions.ts";
import type { RegistryEntry } from "./registry.ts";
import { MAX_LINE } from "./service_protocol.ts";
import { formatPorts } from "./types.ts";
import { drainedText, type DrainFile, type DrainMark } from "./drain.ts";
import { observeService } from "./service_status.ts";
import { statusResponse } from "./status_api.ts";

/** What the dnat actions need from the system (platform/dnat_platform.ts implements it). */
export interface DnatPlatform {
  /** Reads any config file (root, not through sudo). */
  readonly fs: Fs;
  /** Reads only root-owned files nobody else may change, not through links (under sudo). */
  readonly trustedFs: Fs;
  /** Log outputs; the service's also go to stderr (the journal). */
  openLogs(service: boolean): OpenLogs;
  /** Makes `<state_directory>/dnat` root-only if missing, checks it, returns its path. */
  prepareDirectory(stateDirectory: string): Promise<string>;
  /** Everything the manager touches; `service`: one long-lived netfilter context. */
  dnatDeps(config: Config, dir: string, log: Logger, service: boolean): Promise<DnatDeps>;
  /** /proc, as the one-shot calls read it (programs: they hold no FFI). */
  proc(): ProcReader;
  /** This process's pid. */
  readonly pid: number;
  /** A fresh session id. */
  newId(): string;
  /** The service's own parts, released by `close`. */
  serviceHost(dir: string, log: Logger): ServiceHost;
  /** The drain mark (dnat drain) in the service's directory. */
  readonly drain: DrainFile;
  /**
   * Ends this process with `line` on stderr and status 1 if it still runs after `ms`: every
   * one-shot privileged call is bounded, whatever it waits on (a lock, a stuck tool). Returns
   * the disarm.
   */
  deadline(ms: number, line: string): () => void;
}

/** How long a one-shot dnat call (add, del, list, reap, drain, undrain) may take in all. */
export const CALL_LIMIT_MS = 120_000;

/** What only the long-lived service has. */
export interface ServiceHost {
  /** Fires on SIGTERM or SIGINT (SIGHUP reopens the log file instead). */
  readonly stop: AbortSignal;
  heartbeat(
    status:
      & ServiceStatus
      & ({ socket: string } | { socketError: string })
      & { health: string; drained_since?: number; log_lines_lost: number; status_error?: string },
  ): Promise<void>;
  enableAccounting(): Promise<boolean>;
  /** /proc through libc. */
  readonly proc: ProcReader;
  readonly exits: ExitWatch;
  /** Round robin and faulty marks in memory. */
  readonly balancer: Balancer;
  reachable(endpoint: IpEndpoint, timeoutMs: number): Promise<boolean>;
  sshCounters(ssh: NonNullable<RegistryEntry["ssh"]>): Promise<SshCounters | undefined>;
  /**
   * Listens on `path` (its directory root's, the socket root's and `group`'s, mode 660) and
   * calls `onConnection` for each session.
   */
  listen(
    path: string,
    group: string,
    maxLine: number,
    onConnection: (connection: SessionConnection) => void,
  ): Promise<void>;
  /**
   * Answers `/metrics` and `/healthz` over HTTP at `endpoint` (small limits: a scraper and a
   * load balancer, not the world); stopped by `close`.
   */
  serveStatus(endpoint: IpEndpoint, respond: (request: Request) => Response): Promise<void>;
  /** Log lines this process could not write (log directory full or unwritable). */
  logLinesLost(): number;
  /** Stops listening and watching, removes the socket and the heartbeat: stopped, not stale. */
  close(): Promise<void>;
}

/** Runs `xferproxy dnat …`; returns the exit status. */
export async function runDnat(
  args: DnatArgs,
  platform: DnatPlatform,
  context: RunContext,
): Promise<number> {
  const { request } = args;
  const callerUid = sudoCallerUid(context.env);
  const disarm = request.action === "serve" ? () => {} : platform.deadline(
    CALL_LIMIT_MS,
    `xferproxy: dnat ${request.action} did not finish within ${
      CALL_LIMIT_MS / 1000
    } s; stopped (xferproxy check system says what is wrong)`,
  );
  try {
    // Through sudo only the system config counts, whatever --config or the environment say.
    const { config } = callerUid === undefined
      ? await loadConfig(resolveConfigPath(args, context.env, DEFAULT_CONFIG_PATH), platform.fs)
      : await loadConfig(DEFAULT_CONFIG_PATH, platform.trustedFs);
    const open = platform.openLogs(request.action === "serve");
    await withLogging(config.server.rproxy, open, async () => {
      const log = logger("dnat");
      try {
        await perform(args, config, callerUid, platform, context, log);
      } catch (error) {
        // The service's failure is logged once, as Aspera Proxy's line, by withLogging.
        if (request.action === "serve" && !(error instanceof NotAuthorizedError)) {
          throw ServiceStartError.from(error);
        }
        if (error instanceof UserError) {
          log.error("dnat {action} failed: {error}", {
            action: request.action,
            error: error.message,
          });
        }
        throw error;
      }
    });
    return EXIT.ok;
  } catch (error) {
    if (request.action === "add" && error instanceof UserError) {
      const event = error instanceof NotAuthorizedError ? "refused" : "failed";
      context.output.out(formatAddReply({ event, reason: error.message }));
    }
    throw error;
  } finally {
    disarm();
  }
}

async function perform(
  { request }: DnatArgs,
  config: Config,
  callerUid: number | undefined,
  platform: DnatPlatform,
  context: RunContext,
  log: Logger,
): Promise<void> {
  const caller: Caller = callerUid === undefined ? {} : { uid: callerUid };
  const dir = await platform.prepareDirectory(config.server.stateDirectory);
  const service = request.action === "serve";
  const deps: HelperDeps = {
    ...(await platform.dnatDeps(config, dir, log, service)),
    print: (text) => context.output.out(text),
  };
  switch (request.action) {
    case "add": {
      // Through sudo too: the service being down does not undo an administrator's drain.
      if (await platform.drain.read(dir)) {
        throw new NotAuthorizedError("this node is draining: it takes no new sessions");
      }
      const id = platform.newId();
      const claimant = await claimantOf(request.request, caller, deps, platform);
      const entry = await install(deps, {
        id,
        claimant,
        target: request.request,
        ...(context.env("SUDO_USER") ? { user: context.env("SUDO_USER") as string } : {}),
      });
      const s = entry.forwarding.session;
      context.output.out(formatAddReply({
        event: "installed",
        session: id,
        proxy: formatPorts(s.proxy, s.proxyPort, s.portCount),
        server: formatPorts(s.server, s.serverPort, s.portCount),
        filtering: entry.forwarding.filtering,
      }));
      return;
    }
    case "del":
      return await deleteSession(deps, request.id, caller);
    case "list":
      return await listSessions(deps, caller, request.json);
    case "reap": {
      const n = await reapSessions(deps, caller, request.all);
      context.output.out(`reaped ${n} session${n === 1 ? "" : "s"}\n`);
      return;
    }
    case "serve": {
      if (callerUid !== undefined) {
        throw new NotAuthorizedError("dnat serve is the root DNAT service: run it as root");
      }
      return await serve(deps, config, dir, platform, log);
    }
    case "drain":
    case "undrain": {
      if (callerUid !== undefined) {
        throw new NotAuthorizedError(
          `dnat ${request.action} is for root: through sudo it counts as uid ${callerUid}; run it from a root shell (sudo -i)`,
        );
      }
      const running = (await deps.store.read()).entries.filter((e) => e.rule > 0).length;
      const before = await platform.drain.read(dir);
      if (request.action === "undrain") {
        await platform.drain.clear(dir);
        if (before) log.warn("Undrained: new reverse sessions are taken again");
        context.output.out(
          before ? "undrained: new sessions are taken again\n" : "not drained: nothing to do\n",
        );
        return;
      }
      const mark: DrainMark = before ??
        { since: deps.now(), ...(request.reason !== undefined ? { reason: request.reason } : {}) };
      if (!before) {
        await platform.drain.write(dir, mark);
        log.warn("Drained: new reverse sessions are refused, {running} running go on", {
          running,
          ...(mark.reason ? { reason: mark.reason } : {}),
        });
      }
      context.output.out(drainedText(mark, running, before !== undefined));
      return;
    }
  }
}

/**
 * Who a `dnat add` is for: through sudo, the session that ran sudo and the
 * sshd connection it descends from; as root, the owner and addresses named.
 * @throws {NotAuthorizedError}
 */
async function claimantOf(
  request: AddRequest,
  caller: Caller,
  deps: DnatDeps,
  platform: DnatPlatform,
): Promise<Claimant> {
  if (caller.uid === undefined) {
    if (!request.named) {
      throw new NotAuthorizedError(
        "as root, name the session with --owner, --client and --proxy (sessions call through sudo or the service)",
      );
    }
    const owner = await rootNamedOwner(deps.processes, request.named.owner);
    return { owner, uid: 0, client: request.named.client, proxy: request.named.proxy };
  }
  if (request.named) {
    throw new NotAuthorizedError("--owner, --client and --proxy are for root only");
  }
  const proc = platform.proc();
  const session = await sudoCaller(proc, platform.pid, caller.uid);
  const identity = await identifySession(proc, session.pid);
  return {
    owner: identity.owner,
    uid: identity.uid,
    client: identity.client.ip,
    proxy: identity.proxy.ip,
    ssh: { client: identity.client, proxy: identity.proxy },
  };
}

/** The DNAT service: the loop, the sessions' socket, and config reloads. */
async function serve(
  base: HelperDeps,
  config: Config,
  dir: string,
  platform: DnatPlatform,
  log: Logger,
): Promise<void> {
  const host = platform.serviceHost(dir, log);
  let current = config;
  let drainError: string | undefined;
  /** The mark; a file that is there but cannot be read drains (fail closed), said once. */
  const readDrain = () =>
    platform.drain.read(dir).then((mark) => {
      drainError = undefined;
      return mark;
    }, (error) => {
      if (drainError !== errorText(error)) {
        drainError = errorText(error);
        log.warn("Cannot read the drain mark, so draining: {error}", { error: drainError });
      }
      return drained ?? { since: base.now() };
    });
  let drained: DrainMark | undefined;
  drained = await readDrain();
  if (drained) {
    log.warn("Starting drained: new reverse sessions are refused (xferproxy dnat undrain)", {
      since: new Date(drained.since).toISOString(),
      ...(drained.reason ? { reason: drained.reason } : {}),
    });
  }
  let listeningNow = false;
  let configError: string | undefined;
  const observation = observeService(base.backend, base.now, () => ({
    listening: listeningNow,
    configError: () => configError,
    drained: () => drained,
  }));
  const metrics = observation.metrics;
  let lostCounted = 0;
  metrics.draining(drained !== undefined);
  /** Rereads the drain mark; logs when it changes. */
  const rereadDrain = async (): Promise<void> => {
    const mark = await readDrain();
    if ((mark === undefined) === (drained === undefined)) return;
    drained = mark;
    metrics.draining(mark !== undefined);
    if (mark) {
      log.warn(
        "Draining: new reverse sessions are refused",
        mark.reason ? { reason: mark.reason } : {},
      );
    } else log.info("Taking new reverse sessions again");
  };
  let lastText: string | undefined;
  const deps = {
    ...base,
    backend: observation.backend,
    get config() {
      return current;
    },
  };
  /** Rereads the config if the file changed; logs once per change, keeps the last good one. */
  const reloadConfig = async (): Promise<void> => {
    const text = await platform.fs.readTextFile(current.source).catch(() => undefined);
    if (text === lastText) return;
    lastText = text;
    try {
      current = (await loadConfig(current.source, platform.fs)).config;
      configError = undefined;
      log.info("Loaded the changed config {path}", { path: current.source });
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      configError = error.message;
      log.error("Keeping the last good config: {error}", { error: error.message });
    }
  };
  const sessions = sessionService({
    ...deps,
    get config() {
      return current;
    },
    proc: host.proc,
    exits: host.exits,
    balancer: host.balancer,
    reachable: (endpoint, timeoutMs) => host.reachable(endpoint, timeoutMs),
    sshCounters: (ssh) => host.sshCounters(ssh),
    newId: () => platform.newId(),
    refreshConfig: reloadConfig,
    metrics,
    draining: () => drained !== undefined,
  });
  const socket = config.server.serviceSocket;
  const group = config.server.rproxy.proxyGroup;
  let listening: { socket: string } | { socketError: string };
  try {
    await host.listen(socket, group, MAX_LINE, (connection) => {
      sessions.serve(connection).catch((error) =>
        log.error("Serving a session failed: {error}", { error: errorText(error) })
      );
    });
    listening = { socket };
    listeningNow = true;
    log.info("Sessions register through {socket} (group {group})", { socket, group });
  } catch (error) {
    // The service still reaps and heals what sessions install through sudo.
    listening = { socketError: errorText(error) };
    log.error("Sessions cannot register through {socket}: {error}; they fall back to sudo", {
      socket,
      error: errorText(error),
    });
  }
  // Read at start only (a restart applies a changed <metrics_address>). A bind that fails (the
  // address is not up yet, or another process holds the port) is tried again at each heartbeat,
  // and until it works the heartbeat says so, for check system.
  const statusAt = current.server.metricsAddress;
  let statusError: string | undefined;
  let statusUp = false;
  const startStatus = async () => {
    if (!statusAt || statusUp) return;
    try {
      await host.serveStatus(statusAt, (request) => statusResponse(request, observation.status));
      statusUp = true;
      statusError = undefined;
      log.info("Metrics and health at http://{address}/metrics and /healthz", {
        address: formatEndpoint(statusAt),
      });
    } catch (error) {
      if (statusError !== errorText(error)) {
        log.error("Cannot serve metrics at {address}: {error}; trying again every 5 s", {
          address: formatEndpoint(statusAt),
          error: errorText(error),
        });
      }
      statusError = errorText(error);
    }
  };
  await startStatus();
  try {
    await sessions.adopt(await deps.store.read());
    lastText = await platform.fs.readTextFile(config.source).catch(() => undefined);
    await runService({
      ...deps,
      get config() {
        return current;
      },
      stop: host.stop,
      heartbeat: async (status) => {
        await startStatus();
        const lost = host.logLinesLost();
        metrics.logLinesLost(lost - lostCounted);
        lostCounted = lost;
        return host.heartbeat({
          ...status,
          ...listening,
          health: observation.health().line,
          ...(drained ? { drained_since: drained.since } : {}),
          log_lines_lost: lost,
          ...(statusError ? { status_error: statusError } : {}),
        });
      },
      enableAccounting: () => host.enableAccounting(),
      sessions,
      reloadConfig,
      configError: () => configError,
      rereadDrain,
      countActive: (registry) => metrics.active(registry, current.server.rproxy.rules.length),
      netfilterAnsweredAt: () => observation.netfilterAnsweredAt(),
    });
  } finally {
    sessions.close();
    await host.close();
  }
}
