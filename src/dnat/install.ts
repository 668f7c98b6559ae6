/**
 * Installing (`dnat add`, a session's registration): a session's forwarding
 * authorized against the config, its ports chosen, its rules added and its
 * stale flows purged, recorded in the registry under the lock.
 * @module
 */

import { logIgnored } from "../errors.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { authorize, choosePorts, conflicts } from "./authorize.ts";
import type { DnatDeps, Registration } from "./deps.ts";
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

/**
 * Installs one session's forwarding and records it; the rules then live as
 * long as the owner process.
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
    const installed = await deps.store.lock(async () => {
      let registry = await reapDead(deps, await deps.store.read());
      await deps.backend.ensureReady(family);
      const session = choosePorts(authorized, { id, ...claimant }, forwardedSessions(registry));
      let blocking = conflicts(session, forwardingEntries(registry).map((e) => e.forwarding));
      const stuck = blocking.find((c) => c.permanent);
      if (stuck) {
        throw new NotAuthorizedError(
          `session ${stuck.session.id} of ${claimant.client.text} is forwarded to ${
            serverSide(stuck.session)
          } without source-port filtering, so UDP to ${serverSide(session)} cannot be told apart`,
        );
      }
      if (blocking.length) {
        // Learn here too: sessions still get through while the DNAT service is down.
        registry = await learnPorts(deps, registry);
        blocking = conflicts(session, forwardingEntries(registry).map((e) => e.forwarding));
      }
      if (blocking.length) {
        await deps.store.write(registry);
        return undefined;
      }
      await deps.backend.add([session]);
      // A flow that reached the proxy before the rule (un-NATed) would blackhole the session.
      // Another live session's own flow from its learned port stays (users behind one NAT
      // address): deleting it would drop what it carried so far from that session's line.
      await deps.conntrack.purge([session], "udp", forwardedSessions(registry));
      const entry: ForwardingEntry = {
        ...entryOf(registration, deps.now()),
        forwarding: { session, filtering },
      };
      await deps.store.write(withEntry(registry, entry));
      return entry;
    });
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
