/**
 * Sessions owned by the DNAT service: a reverse session connects to the
 * service's socket, is identified from the kernel (the connecting process
 * and the sshd connection it descends from), gets its id issued, asks for
 * its host (rotation and faulty marks live here, out of the group's reach),
 * registers, and hands over to ssh. The service then watches the owner
 * through a pidfd: the moment it exits, its forwarding goes and one
 * closing line says what the session was and what it moved.
 * @module
 */

import { accountLimit, MAX_CONNECTIONS_PER_ACCOUNT } from "./account_limit.ts";
import { faultyChecker } from "./faulty_check.ts";
import { UserError } from "../errors.ts";
import { formatEndpoint, type IpEndpoint } from "../net/endpoint.ts";
import { type Balancer, ruleKey } from "../balancer/balancer.ts";
import { NotAuthorizedError } from "./errors.ts";
import type { Ended, Registration } from "./deps.ts";
import { install, record } from "./install.ts";
import type { DnatDeps } from "./deps.ts";
import { identifySession, type SessionIdentity } from "./owner.ts";
import type { ProcReader } from "./procfs.ts";
import { FORWARD_RULE, type Registry, type RegistryEntry } from "./registry.ts";
import { encodeLine, parseRequest, type ServiceReply } from "./service_protocol.ts";
import { formatPorts } from "./types.ts";
import { type ExitWatch, sessionEndings, type SshCounters } from "./service_endings.ts";
import type { RefusalReason, ServiceMetrics } from "./service_metrics.ts";
import type { ServiceLink } from "../reverse/registrar.ts";
import {
  type DecideReply,
  decideReplyLine,
  type DecideRequest,
  type FileAnswer,
} from "../reverse/decide_protocol.ts";
import { loopback } from "./service_loopback.ts";
import { sessionReads } from "./session_reads.ts";

export {
  closingFields,
  type ExitStatus,
  type ExitWatch,
  type SshCounters,
} from "./service_endings.ts";

/** One connection from a session (platform/unix_server.ts). */
export interface SessionConnection {
  readonly peer: { readonly pid: number; readonly uid: number; readonly pidfd?: number };
  nextLine(timeoutMs: number): Promise<string | undefined>;
  send(line: string): void;
  close(): void;
}

/** What serving sessions needs beyond the DNAT core's dependencies. */
export interface SessionServiceDeps extends DnatDeps {
  readonly proc: ProcReader;
  readonly exits: ExitWatch;
  /** Rotation and faulty marks, kept in the service. */
  readonly balancer: Balancer;
  /** True when something answers an SSH version line at `endpoint` within the time. */
  reachable(endpoint: IpEndpoint, timeoutMs: number): Promise<boolean>;
  /** The client connection's counters once it has closed (or the wait ran out). */
  sshCounters(ssh: NonNullable<RegistryEntry["ssh"]>): Promise<SshCounters | undefined>;
  newId(): string;
  /**
   * Picks up a config file changed since the last look, so a session never
   * meets an older config here than the one it decided with.
   */
  refreshConfig?(): Promise<void>;
  /** Counts sessions for /metrics (absent in tests that do not look). */
  readonly metrics?: ServiceMetrics;
  /** True while the node is drained (dnat drain): new sessions are refused. */
  draining?(): boolean;
  /**
   * Decides a whole session here (reverse/service_decide.ts), its process then only execs;
   * absent, a session that asks is told to decide itself.
   */
  decide?(request: DecideRequest, session: DecidingSession): Promise<DecideReply>;
}

/** A session the service decides: who it is, and the link its registrar talks through. */
export interface DecidingSession {
  readonly peer: SessionConnection["peer"];
  readonly identity: SessionIdentity;
  readonly link: ServiceLink;
  /** Has the session read a file as itself (its keyfile); rejects when it does not answer. */
  read(path: string): Promise<FileAnswer>;
}

/** How long a session may take between its requests (probing hosts is the slow part). */
export const REQUEST_TIMEOUT_MS = 120_000;

/** The service's session side. */
export interface SessionService {
  /** Serves one connection until the session has registered or gone. */
  serve(connection: SessionConnection): Promise<void>;
  /** Watches the owners of registered sessions not yet watched (start, registry written by others). */
  adopt(registry: Registry): Promise<void>;
  /** Writes closing lines for sessions others removed (a poll, `dnat del`, `reap`). */
  closed(ended: readonly Ended[]): void;
  /** True while a pidfd watches the session: its end needs no poll. */
  watches(id: string): boolean;
  /** Stops watching (the service stops; sessions keep their rules). */
  close(): void;
}

/** Creates the session side of the service. */
export function sessionService(deps: SessionServiceDeps): SessionService {
  const log = deps.log;
  const checkFaulty = faultyChecker(deps);
  const endings = sessionEndings(deps);
  const { watch, end } = endings;

  const reply = (connection: SessionConnection, message: ServiceReply) =>
    connection.send(encodeLine(message));

  const refuse = (connection: SessionConnection, reason: string, counted: RefusalReason) => {
    deps.metrics?.refused(counted);
    reply(connection, { event: "refused", reason });
    connection.close();
  };

  async function identify(connection: SessionConnection): Promise<SessionIdentity> {
    const identity = await identifySession(deps.proc, connection.peer.pid);
    if (identity.uid !== connection.peer.uid) {
      throw new NotAuthorizedError(`process ${connection.peer.pid} changed hands while connecting`);
    }
    return identity;
  }

  async function converse(
    connection: SessionConnection,
    id: string,
    identity: SessionIdentity,
    helloAt: number,
    takePidfd: () => number | undefined,
  ) {
    const rules = () => deps.config.server.rproxy.rules;
    for (;;) {
      const request = parseRequest((await connection.nextLine(REQUEST_TIMEOUT_MS)) ?? "");
      if (!request) return connection.close();
      switch (request.op) {
        case "hello":
          return refuse(connection, "hello twice", "bad_request");
        case "pick": {
          await deps.refreshConfig?.();
          const rule = rules()[request.rule - 1];
          if (!rule) {
            return refuse(connection, `the config has no rule ${request.rule}`, "bad_request");
          }
          const pick = await deps.balancer.pick(ruleKey(rule), rule.upstreams.map(formatEndpoint));
          reply(connection, { op: "pick", order: pick.order, skipped: pick.skipped });
          break;
        }
        case "failed": {
          const rule = rules()[request.rule - 1];
          const host = rule?.upstreams[request.host];
          if (!rule || !host) {
            return refuse(
              connection,
              `rule ${request.rule} has no host ${request.host}`,
              "bad_request",
            );
          }
          reply(connection, { op: "noted" });
          // The session's word alone marks nothing: the service looks for itself.
          checkFaulty(host, rule.connectTimeout * 1000, request.reason);
          break;
        }
        case "register": {
          // Hello was the one point of admission: a session admitted there registers even when
          // the node was drained since, so `dnat list` shows every session that runs.
          await deps.refreshConfig?.();
          const registration: Registration = {
            id,
            claimant: {
              owner: identity.owner,
              uid: identity.uid,
              client: identity.client.ip,
              proxy: identity.proxy.ip,
              ssh: { client: identity.client, proxy: identity.proxy },
            },
            target: { rule: request.rule, host: request.host, server: request.server },
            user: request.user,
          };
          // Claimed before it is written: the loop adopting it meanwhile must not watch it twice.
          endings.claim(id);
          try {
            if (request.udp) {
              const entry = await install(deps, registration);
              const s = entry.forwarding.session;
              reply(connection, {
                event: "installed",
                session: id,
                proxy: formatPorts(s.proxy, s.proxyPort, s.portCount),
                server: formatPorts(s.server, s.serverPort, s.portCount),
                filtering: entry.forwarding.filtering,
              });
            } else {
              await record(deps, registration);
              reply(connection, { event: "registered", session: id });
            }
            deps.metrics?.started(request.rule, request.udp, (deps.now() - helloAt) / 1000);
          } catch (error) {
            endings.release(id);
            if (!(error instanceof UserError)) throw error;
            const event = error instanceof NotAuthorizedError ? "refused" : "failed";
            deps.metrics?.refused(event === "refused" ? "not_authorized" : "failed");
            reply(connection, { event, reason: error.message });
            return connection.close();
          }
          connection.close();
          if (!(await watch(id, identity.owner, takePidfd()))) await end(id, {});
          return;
        }
      }
    }
  }

  const limit = accountLimit();

  /** The kernel's word on who connected; undefined (logged, counted) when no sshd session is. */
  async function admit(connection: SessionConnection): Promise<SessionIdentity | string> {
    try {
      return await identify(connection);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      deps.metrics?.refused("not_authorized");
      // A group member's process connecting in a loop must not fill the log: counted, each one.
      const { pid, uid } = connection.peer;
      if (!limit.logRefusal(uid, deps.now(), "admission")) return error.message;
      log.warn(
        "Refused a connection from process {pid} (uid {uid}): {reason} (more from uid {uid} within a minute are counted, not logged)",
        { pid, uid, reason: error.message },
      );
      return error.message;
    }
  }

  /**
   * Decides the session in here: its registrar goes through the same conversation a session
   * process has over the socket, then the one reply says what to exec or how to exit.
   */
  async function decideFor(
    connection: SessionConnection,
    request: DecideRequest,
    takePidfd: () => number | undefined,
  ) {
    const answer = (reply: DecideReply) => {
      connection.send(decideReplyLine(reply));
      connection.close();
    };
    if (!deps.decide) return answer({ op: "fallback", reason: "this service does not decide" });
    const identity = await admit(connection);
    if (typeof identity === "string") {
      return answer({ op: "decided", tell: [`xferproxy: ${identity}`], exit: 255 });
    }
    const read = sessionReads(connection);
    const inside = loopback(connection.peer);
    // Ended, however it ends, it answers the decision's next request at once (as a closed
    // socket would); its error is rethrown below, and must not go unhandled meanwhile: the
    // service has no handler for that and would exit.
    const conversation = converseFrom(inside.connection, takePidfd, identity).finally(
      inside.link.close,
    );
    conversation.catch(() => {});
    try {
      answer(
        await deps.decide(request, { peer: connection.peer, identity, link: inside.link, read }),
      );
    } finally {
      inside.link.close();
      await conversation;
      connection.close();
    }
  }

  /** Closes a connection past its account's limit at once: not a byte read, nothing said. */
  function overLimit(connection: SessionConnection): void {
    const { uid, pid } = connection.peer;
    connection.close();
    deps.metrics?.refused("too_many_connections");
    if (!limit.logRefusal(uid, deps.now())) return;
    log.warn(
      "Refused a connection from process {pid}: uid {uid} holds {limit} connections to the service already (more within a minute are refused without a line)",
      { pid, uid, limit: MAX_CONNECTIONS_PER_ACCOUNT },
    );
  }

  /**
   * Serves one connection. The peer's pidfd is the connection's until a registration's watch
   * takes it; whatever else happens, it is closed when the connection is done, and so is the
   * connection (an unexpected error on the way would leave it open to the peer for good).
   */
  async function serve(connection: SessionConnection): Promise<void> {
    let pidfd = connection.peer.pidfd;
    const takePidfd = () => {
      const taken = pidfd;
      pidfd = undefined;
      return taken;
    };
    const uid = connection.peer.uid;
    try {
      if (!limit.admit(uid)) return overLimit(connection);
      try {
        await converseFrom(connection, takePidfd);
      } finally {
        limit.release(uid);
      }
    } finally {
      connection.close();
      if (pidfd !== undefined) deps.exits.release(pidfd);
    }
  }

  /** `known`: the identity the kernel gave this peer's decision a moment ago (looked up once). */
  async function converseFrom(
    connection: SessionConnection,
    takePidfd: () => number | undefined,
    known?: SessionIdentity,
  ): Promise<void> {
    const first = parseRequest((await connection.nextLine(5000)) ?? "");
    const helloAt = deps.now();
    if (first?.op === "decide") return await decideFor(connection, first, takePidfd);
    if (first?.op !== "hello") {
      connection.close();
      return;
    }
    const identity = known ?? await admit(connection);
    if (typeof identity === "string") {
      reply(connection, { event: "refused", reason: identity });
      return connection.close();
    }
    const id = deps.newId();
    // Drained: the session learns it at once and tells its client in one line.
    if (deps.draining?.()) {
      deps.metrics?.refused("draining");
      reply(connection, { op: "hello", session: id, draining: true });
      return connection.close();
    }
    reply(connection, { op: "hello", session: id });
    try {
      await converse(connection, id, identity, helloAt, takePidfd);
    } finally {
      connection.close();
    }
  }

  return {
    serve,
    async adopt(registry) {
      for (const entry of registry.entries) {
        // The forward daemon removes its own; the liveness poll reaps them once it has ended.
        if (endings.watches(entry.id) || entry.rule === FORWARD_RULE) continue;
        if (!(await watch(entry.id, entry.owner, undefined))) await end(entry.id, {});
      }
    },
    watches: (id) => endings.watches(id),
    closed: (ended) => endings.closed(ended),
    close: () => endings.close(),
  };
}
