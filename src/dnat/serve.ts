/**
 * `xferproxy dnat serve`: the DNAT service's wiring. Its loop (service.ts), the sessions'
 * socket (service_sessions.ts), config reloads that keep the last good config, the drain mark,
 * and /metrics and /healthz (service_status.ts) at <metrics_address>.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { type Config, loadConfig } from "../config/mod.ts";
import type { Fs } from "../config/fs.ts";
import { errorText, UserError } from "../errors.ts";
import type { Balancer } from "../balancer/balancer.ts";
import { formatEndpoint, type IpEndpoint } from "../net/endpoint.ts";
import type { AdministerDeps } from "./administer.ts";
import type { ProcReader } from "./procfs.ts";
import { type FlowEvents, runService, type ServiceStatus } from "./service.ts";
import {
  type ExitWatch,
  type SessionConnection,
  sessionService,
  type SshCounters,
} from "./service_sessions.ts";
import type { RegistryEntry } from "./registry.ts";
import { MAX_LINE } from "./service_protocol.ts";
import type { DrainFile, DrainMark } from "./drain.ts";
import { observeService } from "./service_status.ts";
import { statusResponse } from "./status_api.ts";
import type { ServiceDecideDeps } from "../reverse/service_decide.ts";
import {
  CHECK_FRESH_MS,
  PROBE_REFRESH_MS,
  PROBE_REUSE_MS,
  type ReuseOptions,
  reusingProber,
} from "../reverse/probe_reuse.ts";
import type { FileIdentity } from "../reverse/decide_protocol.ts";
import { logger } from "../log/mod.ts";

/** What the service needs from the system (dnat/run.ts's `DnatPlatform` has it all). */
export interface ServePlatform {
  /** Reads any config file (root, not through sudo). */
  readonly fs: Fs;
  /** A fresh session id. */
  newId(): string;
  /** The service's own parts, released by `close`. */
  serviceHost(dir: string, log: Logger): ServiceHost;
  /** The drain mark (dnat drain) in the service's directory. */
  readonly drain: DrainFile;
}

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
  /** What deciding a whole session here needs beyond the config and the files. */
  readonly deciding: Pick<ServiceDecideDeps, "probe" | "userId" | "isExecutable"> & {
    /** The file's identity now; undefined when it cannot be read. */
    fileIdentity(path: string): Promise<FileIdentity | undefined>;
    /** Connects only, where a server's answer is reused (reverse/probe_reuse.ts). */
    reach: ReuseOptions["reach"];
  };
  sshCounters(ssh: NonNullable<RegistryEntry["ssh"]>): Promise<SshCounters | undefined>;
  /** Starts following conntrack's events for new session flows; stopped by `close`. */
  followFlows(): FlowEvents;
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
  /**
   * Gives back the runtime's code pages and the allocator's free memory
   * (platform/release_pages.ts); the bytes of code advised.
   */
  releaseMemory(): Promise<number>;
  /** Stops listening and watching, removes the socket and the heartbeat: stopped, not stale. */
  close(): Promise<void>;
}

/** The DNAT service: the loop, the sessions' socket, and config reloads. */
export async function serveDnat(
  base: AdministerDeps,
  config: Config,
  dir: string,
  platform: ServePlatform,
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
  // One probe of a server serves the sessions that ask meanwhile, and its answer the next 30 s
  // (a connect checks its host, unless one did in the last 2 s; after 15 s a session that reuses
  // it has it probed again in the background).
  const probe = reusingProber(host.deciding.probe, {
    now: base.now,
    windowMs: PROBE_REUSE_MS,
    refreshMs: PROBE_REFRESH_MS,
    freshMs: CHECK_FRESH_MS,
    reach: host.deciding.reach,
  });
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
    async decide(request, session) {
      await reloadConfig();
      const { decideInService } = await import("../reverse/service_decide.ts");
      return await decideInService(request, session, {
        ...host.deciding,
        probe,
        config: current,
        configFile: () => host.deciding.fileIdentity(current.source),
        log: logger("reverse"),
      });
    },
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
      releaseMemory: async () => {
        const released = await host.releaseMemory();
        log.debug("Gave memory not needed lately back to the kernel ({mib} MiB of code advised)", {
          mib: Math.round(released / 1048576),
        });
      },
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
      flows: host.followFlows(),
      reloadConfig,
      configError: () => configError,
      rereadDrain,
      countActive: (registry) => metrics.active(registry, current.server.rproxy.rules.length),
      countSwept: (flows) => metrics.staleFlowsRemoved(flows),
      netfilterAnsweredAt: () => observation.netfilterAnsweredAt(),
    });
  } finally {
    sessions.close();
    await host.close();
  }
}
