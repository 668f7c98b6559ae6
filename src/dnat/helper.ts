/**
 * `xferproxy dnat`: the only code that changes netfilter. Reverse sessions
 * run `sudo xferproxy dnat add … --hold`, which installs the session's rules,
 * learns the client's source port, and removes everything when its stdin
 * closes (the session ended, however it ended).
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { parseIp } from "../net/ip.ts";
import { type AddRequest, authorize, choosePorts } from "./authorize.ts";
import type { Conntrack } from "./conntrack.ts";
import type { DnatBackend, DnatSession, InstalledSession } from "./types.ts";

/** Everything the helper touches. */
export interface HelperDeps {
  readonly backend: DnatBackend;
  readonly conntrack: Conntrack;
  readonly config: Config;
  /** Runs `fn` holding the exclusive helper lock (port claims, chain creation). */
  lock<T>(fn: () => Promise<T>): Promise<T>;
  /** pids of the xferproxy processes alive now (session owners). */
  livePids(): Promise<ReadonlySet<number>>;
  /** The kernel forwards packets for this family (net.ipv4.ip_forward). */
  forwardingEnabled(family: 4 | 6): Promise<boolean>;
  /** One JSON line on stdout, for the session process. */
  emit(event: Record<string, unknown>): void;
  /** Text on stdout (list). */
  print(text: string): void;
  /** Resolves when the holder should remove the session: stdin closed or a signal. */
  released(): Promise<void>;
  sleep(ms: number): Promise<void>;
  readonly log: Logger;
}

/** ip_forward is off: forwarding cannot work. */
export class ForwardingDisabledError extends Error {
  constructor(family: 4 | 6) {
    const sysctl = family === 4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding";
    super(
      `${sysctl} is 0: enable it with "sysctl -w ${sysctl}=1" and set ${sysctl}=1 in /etc/sysctl.conf`,
    );
    this.name = "ForwardingDisabledError";
  }
}

/** Source-port learning polls conntrack: quickly at first, then once a second. */
const LEARN_POLL_MS = [50, 50, 100, 100, 200, 200, 500] as const;
/** nftables element timeouts are refreshed this often while the session lives. */
const REFRESH_MS = 10_000;

function toDnat(s: InstalledSession): DnatSession | undefined {
  const client = parseIp(s.client);
  const proxy = parseIp(s.proxy);
  const server = parseIp(s.server);
  if (!client || !proxy || !server) return undefined;
  return { ...s, client, proxy, server };
}

/** What removing and reaping need (the forward daemon has these too). */
export type ReapDeps = Pick<HelperDeps, "backend" | "conntrack" | "livePids" | "log">;

/** Removes sessions and purges their flows; returns them. */
export async function removeSessions(
  deps: ReapDeps,
  ids: ReadonlySet<string>,
): Promise<InstalledSession[]> {
  const removed = await deps.backend.remove(ids);
  for (const session of removed) {
    const dnat = toDnat(session);
    // Every source port: flows learned or not stop the moment the session ends.
    if (dnat) {
      await deps.conntrack.purge({
        client: dnat.client,
        proxy: dnat.proxy,
        proxyPort: dnat.proxyPort,
      }).catch(() => {});
    }
  }
  return removed;
}

/** Removes the sessions whose owner is gone; with `all`, every session and our chains too. */
export async function reap(deps: ReapDeps, all: boolean): Promise<InstalledSession[]> {
  const sessions = await deps.backend.list();
  const live = all || sessions.length === 0 ? new Set<number>() : await deps.livePids();
  const doomed = sessions.filter((s) => all || !live.has(s.owner));
  if (all) {
    const removed = await removeSessions(deps, new Set(doomed.map((s) => s.id)));
    await deps.backend.teardown();
    deps.log.info("Removed all xferproxy UDP forwarding ({count} sessions) and its chains", {
      count: removed.length,
    });
    return removed;
  }
  if (doomed.length === 0) return [];
  const removed = await removeSessions(deps, new Set(doomed.map((s) => s.id)));
  for (const s of removed) {
    deps.log.info("Reaped UDP forwarding of session {session} (owner {owner} {why})", {
      session: s.id,
      owner: s.owner,
      why: all ? "reap --all" : "is gone",
    });
  }
  return removed;
}

/** `dnat add`: install, and with `hold`, learn the source port and remove on release. */
export async function addSession(
  deps: HelperDeps,
  request: AddRequest,
  hold: boolean,
): Promise<void> {
  const authorized = authorize(deps.config, request);
  const family = request.client.family;
  if (!(await deps.forwardingEnabled(family))) throw new ForwardingDisabledError(family);
  const session = await deps.lock(async () => {
    await deps.backend.ensureReady(family);
    await reap(deps, false);
    const chosen = choosePorts(authorized, request, await deps.backend.list());
    await deps.backend.add(chosen);
    // A flow that reached the proxy before the rule (un-NATed) would blackhole the session.
    await deps.conntrack.purge(chosen);
    return chosen;
  });
  const filtering = authorized.rule.srcPortFiltering;
  const log = deps.log.with({ session: session.id, rule: request.rule });
  const server = formatEndpoint({ ip: session.server, port: session.serverPort });
  const proxy = formatEndpoint({ ip: session.proxy, port: session.proxyPort });
  deps.emit({ event: "installed", proxy, server, filtering });
  if (!filtering) {
    log.info("Setup UDP forwarding between {client} and {server}", {
      client: `${session.client.text}:*`,
      server,
      proxy,
    });
  } else {
    log.debug("Waiting for the first UDP flow from {client} to {proxy}", {
      client: session.client.text,
      proxy,
    });
  }
  if (!hold) return;

  let current = session;
  let released = false;
  const release = deps.released().then(() => void (released = true));
  try {
    let polls = 0;
    let sinceRefresh = 0;
    while (!released) {
      const wait = filtering && current.clientPort === undefined
        ? LEARN_POLL_MS[Math.min(polls++, LEARN_POLL_MS.length - 1)] as number
        : REFRESH_MS;
      await Promise.race([release, deps.sleep(wait)]);
      if (released) break;
      sinceRefresh += wait;
      if (filtering && current.clientPort === undefined) {
        const narrowed = await deps.lock(() => learnSourcePort(deps, current));
        if (narrowed) {
          current = narrowed;
          const port = narrowed.clientPort as number;
          deps.emit({ event: "learned", clientPort: port });
          log.info("Setup UDP forwarding between {client} and {server}", {
            client: formatEndpoint({ ip: current.client, port }),
            server,
            proxy,
          });
        }
      }
      if (sinceRefresh >= REFRESH_MS) {
        sinceRefresh = 0;
        await deps.backend.refresh(current);
      }
    }
  } finally {
    await removeSessions(deps, new Set([current.id]));
    log.info("Removed UDP forwarding between {client} and {server}", {
      client: current.clientPort === undefined
        ? `${current.client.text}:*`
        : formatEndpoint({ ip: current.client, port: current.clientPort }),
      server,
    });
    deps.emit({ event: "removed" });
  }
}

/**
 * Narrows an address-only session to the source port of its first flow.
 * Several sessions of one client to the same proxy port share a DNAT target
 * (same rule, same host), so a session takes any flow port that no other
 * session has claimed yet; under the helper lock, two never claim the same.
 * Flows from unclaimed ports are purged so that, once every session of the
 * client has its port, nothing else of that address is forwarded.
 */
async function learnSourcePort(
  deps: HelperDeps,
  current: DnatSession,
): Promise<DnatSession | undefined> {
  const sameTarget = (await deps.backend.list()).filter((s) =>
    s.id !== current.id && s.client === current.client.text && s.proxy === current.proxy.text &&
    s.proxyPort === current.proxyPort
  );
  const claimed = new Set(sameTarget.map((s) => s.clientPort).filter((p) => p !== undefined));
  const port = (await deps.conntrack.sourcePorts(current)).find((p) => !claimed.has(p));
  if (port === undefined) return undefined;
  const narrowed = { ...current, clientPort: port };
  await deps.backend.replace(current, narrowed);
  const stillLearning = sameTarget.some((s) => s.clientPort === undefined);
  if (!stillLearning) {
    await deps.conntrack.purgeOtherPorts(current, new Set([...(claimed as Set<number>), port]));
  }
  return narrowed;
}

/** `dnat list`: one line per session, or JSON. */
export async function listSessions(deps: HelperDeps, json: boolean): Promise<void> {
  const live = await deps.livePids();
  const sessions = (await deps.backend.list()).map((s) => ({ ...s, alive: live.has(s.owner) }));
  if (json) return deps.print(JSON.stringify(sessions) + "\n");
  if (sessions.length === 0) return deps.print("no xferproxy DNAT sessions\n");
  for (const s of sessions) {
    const client = s.clientPort === undefined ? `${s.client}:*` : `${s.client}:${s.clientPort}`;
    deps.print(
      `${s.id} owner ${s.owner}${
        s.alive ? "" : " (gone)"
      }  ${client} -> ${s.proxy}:${s.proxyPort} -> ${s.server}:${s.serverPort}\n`,
    );
  }
}
