/**
 * The forward-proxy HTTP API (docs/forward-api.md): a Request → Response
 * handler over injected dependencies, so it is tested without sockets.
 * @module
 */

import { VERSION } from "../version.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/prometheus.ts";
import { logIgnored } from "../errors.ts";
import type { Logger } from "@logtape/logtape";
import { Buffer } from "node:buffer";
import type { ForwardConfig } from "../config/mod.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { type Cidr, type IpAddress, parseIp } from "../net/ip.ts";
import { allocatePort } from "./allocator.ts";
import {
  type ErrorBody,
  parseSessionRequest,
  SESSIONS_PATH,
  type SessionView,
} from "./contract.ts";
import { checkDestination } from "./policy.ts";
import { createLogin } from "./login.ts";
import type { ApiUser, UsersFile } from "./users.ts";

/** One forward session. */
export interface ForwardSession {
  readonly id: string;
  readonly user: string;
  readonly client: IpAddress;
  readonly destination: IpAddress;
  /** The proxy's address toward the client: where it connects, and the DNAT rules' match. */
  readonly proxy: IpAddress;
  readonly requested: string;
  readonly sshPort: number;
  readonly udpPort: number;
  readonly port: number;
  lastKeepalive: number;
}

/** What the API needs from the world. */
export interface ApiDeps {
  readonly config: ForwardConfig;
  /** The proxy's address toward a client. */
  readonly proxyAddress: (client: IpAddress) => Promise<IpAddress | undefined>;
  readonly own: readonly Cidr[];
  readonly loadUsers: () => Promise<UsersFile>;
  readonly resolve: (name: string) => Promise<IpAddress[]>;
  readonly portFree: (port: number) => Promise<boolean>;
  readonly install: (session: ForwardSession) => Promise<void>;
  readonly remove: (session: ForwardSession) => Promise<void>;
  readonly now: () => number;
  readonly newId: () => string;
  readonly log: Logger;
  /** The address families the proxy forwards (IPv6 only with net.ipv6.conf.all.forwarding). */
  readonly families?: ReadonlySet<4 | 6>;
}

/** Counters for /metrics. */
export interface Metrics {
  allocations: number;
  refusals: number;
  authFailures: number;
}

/** The largest request body accepted. */
export const MAX_BODY = 16 * 1024;

/** The API: sessions, metrics, and the handler. */
export interface ForwardApi {
  readonly sessions: Map<string, ForwardSession>;
  readonly metrics: Metrics;
  handle(request: Request, remote: IpAddress): Promise<Response>;
  /** Removes sessions without a keepalive for session_timeout; returns how many. */
  expire(): Promise<number>;
  /** Removes every session (shutdown). */
  removeAll(): Promise<void>;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function error(status: number, message: string, headers: Record<string, string> = {}): Response {
  const body: ErrorBody = { error: message };
  return json(status, body, headers);
}

/** Creates the API over its dependencies. */
export function createApi(deps: ApiDeps): ForwardApi {
  const sessions = new Map<string, ForwardSession>();
  const metrics: Metrics = { allocations: 0, refusals: 0, authFailures: 0 };
  let allocating: Promise<unknown> = Promise.resolve();

  const view = (s: ForwardSession): SessionView => ({
    id: s.id,
    user: s.user,
    client: s.client.text,
    destination: s.requested,
    address: s.destination.text,
    ssh_port: s.sshPort,
    udp_port: s.udpPort,
    proxy_host: s.proxy.text,
    port: s.port,
    keepalive_interval: deps.config.keepaliveInterval,
    expires_at: new Date(s.lastKeepalive + deps.config.sessionTimeout * 1000).toISOString(),
  });

  const login = createLogin({
    authentication: deps.config.authentication,
    loadUsers: deps.loadUsers,
    now: deps.now,
    log: deps.log,
    onFailure: () => metrics.authFailures++,
  });

  /**
   * Whose a session is: the authenticated user's, or, with authentication off, where the name is
   * only the client's own label, the client address's that made it.
   */
  const belongsTo = (s: ForwardSession, name: string, remote: IpAddress) =>
    deps.config.authentication ? s.user === name : s.client.text === remote.text;

  const refuse = (status: number, message: string, fields: Record<string, unknown>) => {
    metrics.refusals++;
    deps.log.warn("Refused session: {reason}", { reason: message, ...fields });
    return error(status, message);
  };

  const create = async (
    request: Request,
    remote: IpAddress,
    who: { name: string; user?: ApiUser },
  ) => {
    const length = Number(request.headers.get("content-length") ?? "0");
    if (length > MAX_BODY) return error(413, `request body over ${MAX_BODY} bytes`);
    const text = await readLimited(request, MAX_BODY);
    if (text === undefined) return error(413, `request body over ${MAX_BODY} bytes`);
    const checked = parseSessionRequest(text);
    if (typeof checked === "string") return error(400, checked);
    const { destination, sshPort, udpPort } = checked;
    let address = parseIp(destination);
    if (!address) {
      // Resolved once, here; the check and the rules use this address, never a later lookup.
      const found = await deps.resolve(destination).catch((e): IpAddress[] => {
        logIgnored(deps.log, `Cannot resolve ${destination}`)(e);
        return [];
      });
      address = found.find((a) => a.family === remote.family) ?? found[0];
      if (!address) return refuse(400, `cannot resolve ${destination}`, { user: who.name });
    }
    if (address.family !== remote.family) {
      return refuse(400, "destination and client must both be IPv4 or both IPv6", {
        user: who.name,
      });
    }
    if (!(deps.families ?? new Set([4, 6])).has(address.family)) {
      return refuse(
        503,
        "the proxy does not forward IPv6 (net.ipv6.conf.all.forwarding is 0, or no ip6tables: see its log)",
        {
          user: who.name,
        },
      );
    }
    const verdict = checkDestination({
      requested: destination,
      address,
      ...(deps.config.authentication ? { allow: who.user?.allow ?? [] } : {}),
      own: deps.own,
    });
    if (!verdict.ok) return refuse(403, verdict.reason, { user: who.name, destination });
    const proxy = await deps.proxyAddress(remote);
    if (!proxy) return error(500, "the proxy has no route back to you");
    const mine = (s: ForwardSession) => belongsTo(s, who.name, remote);
    const cap = deps.config.maxSessionsPerUser;
    // One allocation at a time: a port is never handed out twice, nor a cap passed.
    const result = allocating.then(async () => {
      if ([...sessions.values()].filter(mine).length >= cap) return "capped" as const;
      const held = new Set([...sessions.values()].map((s) => s.port));
      const port = await allocatePort(
        deps.config.portRangeLow,
        deps.config.portRangeHigh,
        held,
        deps.portFree,
      );
      if (port === undefined) return undefined;
      const session: ForwardSession = {
        id: deps.newId(),
        user: who.name,
        client: remote,
        destination: address as IpAddress,
        proxy,
        requested: destination,
        sshPort,
        udpPort,
        port,
        lastKeepalive: deps.now(),
      };
      sessions.set(session.id, session);
      try {
        await deps.install(session);
      } catch (e) {
        sessions.delete(session.id);
        await deps.remove(session).catch(
          logIgnored(deps.log, `Cannot undo the failed install of session ${session.id}`),
        );
        throw e;
      }
      return session;
    });
    // The queue goes on after a failure; the caller sees it through `result`.
    allocating = result.catch(() => {});
    let session;
    try {
      session = await result;
    } catch (e) {
      deps.log.error("Installing forwarding failed: {error}", { error: String(e) });
      return error(500, "the proxy could not install forwarding; see its log");
    }
    if (session === "capped") {
      return refuse(429, `you already hold ${cap} sessions (max_sessions_per_user)`, {
        user: who.name,
      });
    }
    if (!session) {
      return refuse(
        503,
        `no free proxy port in ${deps.config.portRangeLow}-${deps.config.portRangeHigh}`,
        { user: who.name },
      );
    }
    metrics.allocations++;
    deps.log.info("Setup forwarding between {client} and {destination} via port {port}", {
      client: remote.text,
      destination: formatEndpoint({ ip: session.destination, port: sshPort }),
      port: session.port,
      udp_port: udpPort,
      session: session.id,
      user: who.name,
    });
    return json(201, view(session));
  };

  const drop = async (session: ForwardSession, why: string) => {
    sessions.delete(session.id);
    await deps.remove(session);
    deps.log.info("Removed forwarding of session {session} ({why})", {
      session: session.id,
      why,
      port: session.port,
    });
  };

  return {
    sessions,
    metrics,
    async handle(request, remote) {
      const url = new URL(request.url);
      const path = url.pathname;
      if (path === "/healthz" && request.method === "GET") {
        return json(200, { status: "ok", sessions: sessions.size });
      }
      const isMetrics = path === "/metrics" && request.method === "GET";
      if (!isMetrics && !path.startsWith(SESSIONS_PATH)) {
        return error(404, `no such endpoint ${path}`);
      }
      const m = /^\/v1\/sessions\/([0-9a-f-]{36})(\/keepalive)?$/.exec(path);
      const session = m ? sessions.get(m[1] as string) : undefined;
      const who = await login(request.headers.get("authorization") ?? "", remote, session?.user);
      if ("status" in who) return error(who.status, who.message, who.headers);
      // Behind the same login as the sessions: with authentication on, counts are for users.
      if (isMetrics) {
        return new Response(prometheus(deps.config, sessions, metrics), {
          headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
        });
      }
      // Admins exist only with authentication: without it, a session is its address's alone.
      const owns = (s: ForwardSession) =>
        belongsTo(s, who.name, remote) || who.user?.admin === true;
      if (path === SESSIONS_PATH) {
        if (request.method === "POST") return await create(request, remote, who);
        if (request.method === "GET") {
          return json(200, [...sessions.values()].filter(owns).map(view));
        }
        return error(405, "use GET or POST");
      }
      if (!m || !session || !owns(session)) return error(404, "no such session");
      if (m[2] && request.method === "POST") {
        session.lastKeepalive = deps.now();
        return json(200, view(session));
      }
      if (!m[2] && request.method === "DELETE") {
        await drop(session, "deleted by client");
        return new Response(null, { status: 204 });
      }
      if (!m[2] && request.method === "GET") return json(200, view(session));
      return error(405, "method not allowed here");
    },
    async expire() {
      const cutoff = deps.now() - deps.config.sessionTimeout * 1000;
      const stale = [...sessions.values()].filter((s) => s.lastKeepalive < cutoff);
      for (const s of stale) await drop(s, "no keepalive");
      return stale.length;
    },
    async removeAll() {
      for (const s of [...sessions.values()]) await drop(s, "shutdown");
    },
  };
}

async function readLimited(request: Request, limit: number): Promise<string | undefined> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      // The body is refused anyway; a stream that is already broken has nothing to cancel.
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

function prometheus(
  config: ForwardConfig,
  sessions: Map<string, ForwardSession>,
  m: Metrics,
): string {
  const range = config.portRangeHigh - config.portRangeLow + 1;
  return [
    "# HELP xferproxy_build_info Always 1; the label says which build runs.",
    "# TYPE xferproxy_build_info gauge",
    `xferproxy_build_info{version="${VERSION}"} 1`,
    "# HELP xferproxy_forward_sessions Forward sessions open now.",
    "# TYPE xferproxy_forward_sessions gauge",
    `xferproxy_forward_sessions ${sessions.size}`,
    "# HELP xferproxy_forward_allocations_total Sessions allocated since start.",
    "# TYPE xferproxy_forward_allocations_total counter",
    `xferproxy_forward_allocations_total ${m.allocations}`,
    "# HELP xferproxy_forward_refusals_total Session requests refused (policy, exhaustion, resolution).",
    "# TYPE xferproxy_forward_refusals_total counter",
    `xferproxy_forward_refusals_total ${m.refusals}`,
    "# HELP xferproxy_forward_auth_failures_total Failed API logins.",
    "# TYPE xferproxy_forward_auth_failures_total counter",
    `xferproxy_forward_auth_failures_total ${m.authFailures}`,
    "# HELP xferproxy_forward_ports_free Proxy ports not held by a session.",
    "# TYPE xferproxy_forward_ports_free gauge",
    `xferproxy_forward_ports_free ${range - sessions.size}`,
    "",
  ].join("\n");
}
