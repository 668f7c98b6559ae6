/**
 * The forward-proxy daemon: API listeners, in-process DNAT (TCP for SSH and
 * UDP for FASP on one proxy port per session), the cleanup loop, and a clean
 * stop that removes every rule it installed.
 * @module
 */

import { errorText, logIgnored, UserError } from "../errors.ts";
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import { type Cidr, type IpAddress, parseCidr } from "../net/ip.ts";
import type { Conntrack } from "../dnat/conntrack.ts";
import { reapOrphans } from "../dnat/helper.ts";
import { ForwardingDisabledError } from "../dnat/errors.ts";
import type { ProcessTable } from "../dnat/owner.ts";
import type { DnatBackend, DnatSession, Owner } from "../dnat/types.ts";
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

/** The daemon cannot start; the message says what to fix. */
export class DaemonStartError extends UserError {}

/** Runs until `host.stop` fires; returns the API (for tests) once stopped. */
export async function runDaemon(
  config: Config,
  deps: { host: DaemonHost; backend: DnatBackend; conntrack: Conntrack; log: Logger },
): Promise<ForwardApi> {
  const { host, backend, conntrack, log } = deps;
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
  await reapOrphans({ backend, conntrack, processes: host.processes, log });

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
  const purge = async (d: DnatSession) => {
    for (const protocol of ["tcp", "udp"] as const) {
      await conntrack.purge(d, protocol).catch(
        logIgnored(log, `Cannot purge ${protocol} flows of session ${d.id}`),
      );
    }
  };
  const api = createApi({
    families,
    config: proxy,
    proxyAddress,
    own,
    loadUsers: host.loadUsers,
    resolve: host.resolve,
    portFree: host.portFree,
    install: async (s) => {
      const d = dnatOf(s);
      await backend.add([d]);
      await purge(d);
    },
    remove: async (s) => {
      await backend.remove([dnatOf(s)], []);
      await purge(dnatOf(s));
    },
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
  try {
    await new Promise<void>((resolve) => {
      if (host.stop.aborted) return resolve();
      host.stop.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    // However the daemon ends short of SIGKILL, its rules go (after SIGKILL, the next start reaps).
    clearInterval(cleanup);
    for (const l of listeners) {
      await l.shutdown().catch(logIgnored(log, "Cannot close an API socket"));
    }
    await api.removeAll();
  }
  log.info("Stopped; every forwarding rule removed");
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
