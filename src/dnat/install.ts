/**
 * Installing (`dnat add`, a session's registration): a session's forwarding
 * authorized against the config, its ports chosen, its rules added and its
 * stale flows purged, recorded in the registry under the lock.
 * @module
 */

import { errorText, logIgnored } from "../errors.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { authorize, type Authorized, choosePorts, conflicts } from "./authorize.ts";
import type { DnatDeps, Registration, RegistryStore } from "./deps.ts";
import { ForwardingDisabledError, NotAuthorizedError } from "./errors.ts";
import { learnPorts, reapDead } from "./reconcile.ts";
import {
  forwardedSessions,
  forwardingEntries,
  type ForwardingEntry,
  type RegistryEntry,
  withEntry,
} from "./registry.ts";
import { clientSide, formatPorts, serverSide } from "./types.ts";

/** How long an install waits for another session of the same client to learn its port. */
export const SERIALISE_WAIT_MS = 10_000;
const RETRY_MS = 100;

function entryOf(registration: Registration, created: number): RegistryEntry {
  const { id, claimant, target, user } = registration;
  return {
    id,
    owner: claimant.owner,
    uid: claimant.uid,
    rule: target.rule,
    created,
    ...(user ? { user } : {}),
    upstream: formatEndpoint(target.server),
    ...(claimant.ssh ? { ssh: claimant.ssh } : {}),
  };
}

/**
 * Records a session that needs no forwarding (scp, sftp, rsync): the
 * service writes its closing line when it ends. Checked against the config
 * like any other.
 * @throws {NotAuthorizedError}
 */
export async function record(deps: DnatDeps, registration: Registration): Promise<RegistryEntry> {
  authorize(deps.config, { ...registration.target, ...registration.claimant });
  return await deps.store.lock(async () => {
    const entry = entryOf(registration, deps.now());
    await deps.store.write(withEntry(await deps.store.read(), entry));
    return entry;
  });
}

/** The most sessions one change installs: those of a burst waiting together. */
export const MAX_INSTALL_BATCH = 64;

/** An install waiting for the lock, authorized already. */
interface Waiting {
  readonly registration: Registration;
  readonly authorized: Authorized;
  readonly filtering: boolean;
  /** Its entry; undefined while another session of its client blocks it; or why it failed. */
  settle(outcome: ForwardingEntry | undefined | Error): void;
}

/** The installs waiting for each registry (the service's, or a one-shot call's own). */
const waitingFor = new WeakMap<RegistryStore, Waiting[]>();

/**
 * Installs one session's forwarding and records it; the rules then live as
 * long as the owner process. Installs that wait for the lock together are
 * made together by whichever takes it first: one reap, one rule change, one
 * purge and one registry write for a burst's sessions instead of one each,
 * which in a burst were the service's bottleneck (each behind the other).
 * @throws {NotAuthorizedError} when the config or a conflict forbids it
 * @throws {ForwardingDisabledError}
 */
export async function install(
  deps: DnatDeps,
  registration: Registration,
): Promise<ForwardingEntry> {
  const { id, claimant, target } = registration;
  const authorized = authorize(deps.config, { ...target, ...claimant });
  const family = claimant.client.family;
  if (!(await deps.forwardingEnabled(family))) throw new ForwardingDisabledError(family);
  const filtering = authorized.rule.srcPortFiltering;
  const log = deps.log.with({ session: id, rule: target.rule });
  const deadline = deps.now() + SERIALISE_WAIT_MS;
  for (;;) {
    const installed = await installTogether(deps, { registration, authorized, filtering });
    if (installed) {
      const session = installed.forwarding.session;
      if (filtering) {
        log.debug("Waiting for the first UDP flow from {client} to {proxy}", {
          client: session.client.text,
          proxy: formatPorts(session.proxy, session.proxyPort, session.portCount),
        });
      } else {
        log.info("Setup UDP forwarding between {client} and {server}", {
          client: clientSide(session),
          server: serverSide(session),
          owner: session.owner.pid,
        });
      }
      return installed;
    }
    if (deps.now() >= deadline) {
      throw new NotAuthorizedError(
        `another session of ${claimant.client.text} to this proxy port has not sent UDP within ${
          SERIALISE_WAIT_MS / 1000
        } s; its flows and this one's could not be told apart`,
      );
    }
    await deps.sleep(RETRY_MS);
  }
}

/**
 * Queues one install and takes the lock: the first to hold it installs every install then
 * waiting (this one or others'), and the later ones find theirs done.
 */
function installTogether(
  deps: DnatDeps,
  request: Omit<Waiting, "settle">,
): Promise<ForwardingEntry | undefined> {
  const outcome = new Promise<ForwardingEntry | undefined>((resolve, reject) => {
    const queue = waitingFor.get(deps.store) ?? [];
    waitingFor.set(deps.store, queue);
    queue.push({
      ...request,
      settle: (o) => o instanceof Error ? reject(o) : resolve(o),
    });
  });
  // Another holder of the lock may settle it long before this call's own turn: not unhandled.
  outcome.catch(() => {});
  const locked = deps.store.lock(async () => {
    const group = (waitingFor.get(deps.store) ?? []).splice(0, MAX_INSTALL_BATCH);
    if (group.length === 0) return;
    try {
      await installGroup(deps, group);
    } catch (error) {
      // Settling twice is a no-op: those already told keep their outcome.
      for (const waiting of group) waiting.settle(error as Error);
    }
  });
  // Told as soon as it is settled (the group's purge may still run), or failing with the lock.
  return Promise.race([outcome, locked.then(() => outcome)]);
}

/** Installs a group under the lock, in arrival order; each waiting install is told its outcome. */
async function installGroup(deps: DnatDeps, group: readonly Waiting[]): Promise<void> {
  const read = await reapDead(deps, await deps.store.read());
  let registry = read;
  for (const family of new Set(group.map((w) => w.registration.claimant.client.family))) {
    await deps.backend.ensureReady(family);
  }
  const accepted: Array<{ waiting: Waiting; entry: ForwardingEntry }> = [];
  /** The group's sessions accepted so far count as installed for the ones after them. */
  const forwardings = () => [
    ...forwardingEntries(registry).map((e) => e.forwarding),
    ...accepted.map((a) => a.entry.forwarding),
  ];
  const blocked: Waiting[] = [];
  let learned = false;
  for (const waiting of group) {
    const { registration } = waiting;
    const { id, claimant } = registration;
    const session = choosePorts(waiting.authorized, { id, ...claimant }, [
      ...forwardedSessions(registry),
      ...accepted.map((a) => a.entry.forwarding.session),
    ]);
    let blocking = conflicts(session, forwardings());
    const stuck = blocking.find((c) => c.permanent);
    if (stuck) {
      waiting.settle(
        new NotAuthorizedError(
          `session ${stuck.session.id} of ${claimant.client.text} is forwarded to ${
            serverSide(stuck.session)
          } without source-port filtering, so UDP to ${serverSide(session)} cannot be told apart`,
        ),
      );
      continue;
    }
    if (blocking.length && !learned) {
      // Learn here too: sessions still get through while the DNAT service is down.
      learned = true;
      registry = await learnPorts(deps, registry);
      blocking = conflicts(session, forwardings());
    }
    if (blocking.length) {
      blocked.push(waiting);
      continue;
    }
    accepted.push({
      waiting,
      entry: {
        ...entryOf(registration, deps.now()),
        forwarding: { session, filtering: waiting.filtering },
      },
    });
  }
  const sessions = accepted.map((a) => a.entry.forwarding.session);
  const live = forwardedSessions(registry);
  if (accepted.length) {
    await deps.backend.add(sessions);
    for (const { entry } of accepted) registry = withEntry(registry, entry);
  }
  if (registry !== read) await deps.store.write(registry);
  for (const { waiting, entry } of accepted) waiting.settle(entry);
  for (const waiting of blocked) waiting.settle(undefined);
  if (!accepted.length) return;
  // A flow that reached the proxy before the rule (un-NATed) would blackhole the session. The
  // sessions are told first: their first UDP comes only after the SSH leg is up and FASP has
  // negotiated, and a conntrack process on their path was the most of what UDP added to a
  // session's set-up. Still under the lock, as every change to the sessions' flows is. Another
  // live session's own flow from its learned port stays (users behind one NAT address):
  // deleting it would drop what it carried so far from that session's line. One turn of the event
  // loop first (not the clock's sleep: no time passes): the sessions' answers go out before
  // conntrack's process is started.
  await new Promise((resolve) => setTimeout(resolve, 0));
  await deps.conntrack.purge(sessions, "udp", live).catch((error) =>
    deps.log.warn(
      "Cannot purge stale UDP flows before forwarding sessions {sessions}: {error}; a client that sent UDP before its session may not reach its server",
      { sessions: sessions.map((s) => s.id).join(","), error: errorText(error) },
    )
  );
}

/**
 * Installs and records sessions whose owner chose their forwarding itself
 * (the forward daemon's: rule 0, TCP and UDP on one proxy port), so that
 * the same reconcile heals them and `dnat list` shows them.
 */
export async function installOwned(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "store" | "log">,
  entries: readonly ForwardingEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  await deps.store.lock(async () => {
    let registry = await deps.store.read();
    const sessions = entries.map((e) => e.forwarding.session);
    for (const family of new Set(sessions.map((s) => s.client.family))) {
      await deps.backend.ensureReady(family);
    }
    // Recorded first: a crash between the two leaves a record the owner's end removes.
    for (const entry of entries) registry = withEntry(registry, entry);
    await deps.store.write(registry);
    await deps.backend.add(sessions);
    // A flow that reached the proxy before the rule (un-NATed) would blackhole the session.
    for (const protocol of ["tcp", "udp"] as const) {
      await deps.conntrack.purge(sessions, protocol).catch(
        logIgnored(deps.log, `Cannot purge the ${protocol} flows of ${sessions.length} sessions`),
      );
    }
  });
}
