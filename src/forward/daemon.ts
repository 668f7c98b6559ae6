/**
 * The forward-proxy daemon: API listeners, DNAT through the same core and
 * registry as reverse sessions (TCP for SSH and UDP for FASP on one proxy
 * port per session, recorded as rule 0 with the daemon as owner), the
 * cleanup and heal loops, and a clean stop that removes every rule it
 * installed.
 * @module
 */

import { errorText, logIgnored, UserError } from "../errors.ts";
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import { type Cidr, type IpAddress, parseCidr } from "../net/ip.ts";
import type { Conntrack } from "../dnat/conntrack.ts";
import { ForwardingDisabledError } from "../dnat/errors.ts";
import { installOwned } from "../dnat/install.ts";
import { ORPHANS_EVERY_MS, reapDead, reapOrphans, repairKernel } from "../dnat/reconcile.ts";
import type { RegistryStore } from "../dnat/deps.ts";
import { removeEntries, removeOwned } from "../dnat/remove.ts";
import type { ProcessTable } from "../dnat/owner.ts";
import { FORWARD_RULE, forwardedSessions, type ForwardingEntry } from "../dnat/registry.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { type DnatBackend, type DnatSession, type Owner, REFRESH_SECONDS } from "../dnat/types.ts";
import { createApi, type ForwardApi, type ForwardSession } from "./api.ts";
import type { UsersFile } from "./users.ts";

/** A running listener. */
export interface Listener {
  shutdown(): Promise<void>;
}

/** The host side of the daemon. */
export interface DaemonHost {
  serve(
    options: { hostname: string; port: number; cert?: string; key?: string },
    handler: (request: Request, remote: IpAddress) => Promise<Response>,
  ): Promise<Listener>;
  readFile(path: string): Promise<string>;
  /** The generated HTTPS identity, made on first use: for HTTPS without <cert_file>/<key_file>. */
  defaultTls(): Promise<
    { cert: string; key: string; certPath: string; fingerprint: string; created: boolean }
  >;
  localAddressFor(client: IpAddress): Promise<IpAddress | undefined>;
  ownNetworks(): Promise<Cidr[]>;
  portFree(port: number): Promise<boolean>;
  resolve(name: string): Promise<IpAddress[]>;
  loadUsers(): Promise<UsersFile>;
  forwardingEnabled(family: 4 | 6): Promise<boolean>;
  /** Owners of rules found at start: those that ended are reaped. */
  readonly processes: ProcessTable;
  /** Fires on SIGTERM/SIGINT. */
  readonly stop: AbortSignal;
  /** This daemon: it owns every rule it installs. */
  readonly owner: Owner;
  now(): number;
  newId(): string;
}

/** How often the daemon heals its sessions' rules (a firewall reload) and retries removals. */
export const HEAL_EVERY_MS = 1000;

/** What the daemon's sessions go through: the DNAT core's own dependencies. */
export interface DaemonCore {
  readonly backend: DnatBackend;
  readonly conntrack: Conntrack;
  readonly store: RegistryStore;
  readonly processes: ProcessTable;
  readonly log: Logger;
  now(): number;
}

const sameOwner = (a: Owner, b: Owner) => a.pid === b.pid && a.start === b.start;

/** What a heal round does besides its removals and repairs. */
export interface HealOptions {
  /** Keep the owner's expiring kernel state alive. */
  readonly refresh: boolean;
  /**
   * Reap orphans: tagged rules of ended owners no registry knows, and forwarded flows of no
   * session (a purge that failed, or a daemon killed between removing rules and purging).
   */
  readonly orphans?: boolean;
}

/**
 * One heal round, under the DNAT lock: retries the owner's removals that
 * failed, puts back rules a firewall reload dropped (every recorded
 * session's: the registry is the one desired state), and, as `options`
 * ask, keeps the owner's expiring kernel state alive and reaps orphans.
 * Returns the ids still being removed.
 */
export async function healRound(
  core: DaemonCore,
  owner: Owner,
  options: HealOptions,
): Promise<string[]> {
  return await core.store.lock(async () => {
    let registry = await core.store.read();
    const pending = registry.entries.filter((e) =>
      e.removing !== undefined && sameOwner(e.owner, owner)
    );
    if (pending.length) {
      try {
        const after = await removeEntries(core, registry, pending, "removal retried");
        registry = after.registry;
        await core.store.write(registry);
      } catch (error) {
        core.log.debug("Removal of {count} session(s) failed again: {error}", {
          count: pending.length,
          error: errorText(error),
        });
        // Whatever blocked it (an element someone changed): the kernel made to hold exactly what
        // the registry wants, so the next try finds only what it removes.
        await core.backend.reconcile(forwardedSessions(registry));
      }
    }
    await repairKernel(core, registry);
    if (options.refresh) {
      await core.backend.refresh(
        forwardedSessions(registry).filter((s) => sameOwner(s.owner, owner)),
      );
    }
    if (options.orphans) await reapOrphans(core, registry);
    return registry.entries.filter((e) => e.removing !== undefined && sameOwner(e.owner, owner))
      .map((e) => e.id);
  });
}

/** The daemon cannot start; the message says what to fix. */
export class DaemonStartError extends UserError {}

/** Runs until `host.stop` fires; returns the API (for tests) once stopped. */
export async function runDaemon(
  config: Config,
  deps: {
    host: DaemonHost;
    backend: DnatBackend;
    conntrack: Conntrack;
    store: RegistryStore;
    log: Logger;
  },
): Promise<ForwardApi> {
  const { host, backend, log } = deps;
  const core: DaemonCore = { ...deps, processes: host.processes, now: () => host.now() };
  const server = config.server;
  const proxy = server.proxy;
  if (!proxy.enabled) {
    throw new DaemonStartError(
      "The forward proxy is disabled: set <server><proxy><enabled>true</enabled> in the config",
    );
  }
  if (!backend.capabilities.tcp) {
    throw new DaemonStartError(
      `The ${backend.name} backend cannot forward TCP, which forward sessions need: set <dnat_backend> to one that can`,
    );
  }
  if (!(await host.forwardingEnabled(4))) throw new ForwardingDisabledError(4);
  await backend.ensureReady(4);
  const families = new Set<4 | 6>([4]);
  if (await host.forwardingEnabled(6)) {
    try {
      await backend.ensureReady(6);
      families.add(6);
    } catch (error) {
      log.warn("IPv6 sessions are refused: {error}", { error: (error as Error).message });
    }
  } else {
    log.info("IPv6 sessions are refused: net.ipv6.conf.all.forwarding is 0");
  }
  // What a daemon killed with SIGKILL left: its records, rules no record names, and flows of
  // sessions whose rules it had removed but whose flows it had not purged yet.
  await core.store.lock(async () => {
    await reapOrphans(core, await reapDead(core, await core.store.read()));
  });

  const own = await host.ownNetworks();
  if (proxy.bindIpNetmask) {
    const bits = proxy.bindIpNetmask.bytes.reduce(
      (n, b) => n + b.toString(2).replaceAll("0", "").length,
      0,
    );
    const net = parseCidr(`${proxy.bindIpAddress.text}/${bits}`);
    if (net) own.push(net);
  }
  const bindHost = proxy.bindIpAddress.text;
  const proxyAddress = async (client: IpAddress) =>
    proxy.bindIpAddress.text !== "0.0.0.0"
      ? proxy.bindIpAddress
      : await host.localAddressFor(client);
  const entryOf = (s: ForwardSession): ForwardingEntry => ({
    id: s.id,
    owner: host.owner,
    uid: 0,
    rule: FORWARD_RULE,
    created: host.now(),
    user: s.user,
    upstream: formatEndpoint({ ip: s.destination, port: s.sshPort }),
    forwarding: { session: dnatOf(s), filtering: false },
  });
  const dnatOf = (s: ForwardSession): DnatSession => {
    return {
      id: s.id,
      owner: host.owner,
      client: s.client,
      proxy: s.proxy,
      proxyPort: s.port,
      portCount: 1,
      server: s.destination,
      serverPort: s.udpPort,
      tcpServerPort: s.sshPort,
    };
  };
  const api = createApi({
    families,
    config: proxy,
    proxyAddress,
    own,
    loadUsers: host.loadUsers,
    resolve: host.resolve,
    portFree: host.portFree,
    install: (s) => installOwned(core, [entryOf(s)]),
    // A removal the kernel refuses stays recorded; the heal loop retries it.
    remove: async (s) => void await removeOwned(core, new Set([s.id]), "forward session ended"),
    now: () => host.now(),
    newId: () => host.newId(),
    log,
  });

  // Before listening: a certificate that cannot be made is its own error, not a listen failure.
  const tls = server.enableHttps ? await httpsIdentity(proxy, host, log) : undefined;
  const listeners: Listener[] = [];
  const ports: string[] = [];
  const handler = (request: Request, remote: IpAddress) => api.handle(request, remote);
  // "All addresses" listens on IPv6 too (one dual-stack socket), unless the host has no IPv6.
  const listen = async (options: { port: number; cert?: string; key?: string }) => {
    if (bindHost === "0.0.0.0") {
      try {
        return await host.serve({ hostname: "::", ...options }, handler);
      } catch (error) {
        log.debug("Listening on IPv4 only: {error}", { error: errorText(error) });
      }
    }
    return await host.serve({ hostname: bindHost, ...options }, handler);
  };
  try {
    if (server.enableHttp) {
      listeners.push(await listen({ port: server.httpPort }));
      ports.push(String(server.httpPort));
    }
    if (tls) {
      listeners.push(await listen({ port: server.httpsPort, cert: tls.cert, key: tls.key }));
      ports.push(`${server.httpsPort}s`);
    }
  } catch (error) {
    for (const l of listeners) await l.shutdown();
    throw new DaemonStartError(`Cannot listen on ${bindHost}: ${(error as Error).message}`);
  }
  // Aspera Proxy's start-up lines.
  log.info(`proxy service ready (port range ${proxy.portRangeLow}-${proxy.portRangeHigh})`);
  log.info(`Started on port(s) ${ports.join(",")}`);

  const cleanup = setInterval(() => {
    api.expire().catch((error) => log.error("Cleanup failed: {error}", { error: String(error) }));
  }, proxy.cleanupInterval * 1000);
  let lastRefresh = host.now();
  let lastOrphans = host.now();
  let healing: Promise<void> | undefined;
  const heal = setInterval(() => {
    // A round still running (a slow kernel) is not queued behind: the next tick tries again.
    if (healing) return;
    const refresh = host.now() - lastRefresh >= REFRESH_SECONDS * 1000;
    if (refresh) lastRefresh = host.now();
    // As often as the DNAT service: a forward-only proxy may run none.
    const orphans = host.now() - lastOrphans >= ORPHANS_EVERY_MS;
    if (orphans) lastOrphans = host.now();
    healing = healRound(core, host.owner, { refresh, orphans }).then(
      () => {},
      (error) => log.error("Heal round failed: {error}", { error: errorText(error) }),
    ).finally(() => healing = undefined);
  }, HEAL_EVERY_MS);
  try {
    await new Promise<void>((resolve) => {
      if (host.stop.aborted) return resolve();
      host.stop.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    // However the daemon ends short of SIGKILL, its rules go (after SIGKILL, the next start reaps).
    clearInterval(cleanup);
    clearInterval(heal);
    await healing;
    for (const l of listeners) {
      await l.shutdown().catch(logIgnored(log, "Cannot close an API socket"));
    }
    await api.removeAll();
  }
  const left = await healRound(core, host.owner, { refresh: false });
  if (left.length) {
    log.error(
      "Stopped; the forwarding of {count} session(s) could not be removed: the DNAT service or the next start removes it",
      { count: left.length, sessions: left.join(",") },
    );
  } else log.info("Stopped; every forwarding rule removed");
  return api;
}

/** The configured certificate and key, or the generated one (said once in the log). */
async function httpsIdentity(
  proxy: Config["server"]["proxy"],
  host: DaemonHost,
  log: Logger,
): Promise<{ cert: string; key: string }> {
  if (proxy.certFile && proxy.keyFile) {
    return { cert: await host.readFile(proxy.certFile), key: await host.readFile(proxy.keyFile) };
  }
  const made = await host.defaultTls();
  log.warn(
    `${
      made.created ? "Generated" : "Using"
    } a self-signed HTTPS certificate {path} (SHA-256 {fingerprint}); set <cert_file> and <key_file> in <proxy> to use your own`,
    { path: made.certPath, fingerprint: made.fingerprint },
  );
  return made;
}
