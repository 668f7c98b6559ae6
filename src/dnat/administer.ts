/**
 * `xferproxy dnat del|list|reap`: what administrators (as root) and session
 * users (through sudo, their own sessions only) may do with registered
 * forwarding. `add` is `install` in install.ts; `serve` is service.ts.
 * @module
 */

import type { Caller, DnatDeps } from "./deps.ts";
import { purgeInstalledFlows, reconcileKernel } from "./reconcile.ts";
import { removeEntries } from "./remove.ts";
import { isAlive } from "./owner.ts";
import { emptyRegistry, forwardingEntries, type RegistryEntry } from "./registry.ts";
import { NotAuthorizedError } from "./errors.ts";
import { formatPorts, toInstalled } from "./types.ts";
import type { Listed } from "./contract.ts";

/** The CLI actions' dependencies: the core's, and where to print. */
export interface AdministerDeps extends DnatDeps {
  print(text: string): void;
}

function mine(entry: RegistryEntry, caller: Caller): boolean {
  return caller.uid === undefined || entry.uid === caller.uid;
}

/**
 * `dnat del --session ID`: removes one session. Under sudo only the
 * caller's own; as root also rules that only the kernel holds.
 * @throws {NotAuthorizedError}
 */
export async function deleteSession(
  deps: AdministerDeps,
  id: string,
  caller: Caller,
): Promise<void> {
  await deps.store.lock(async () => {
    const registry = await deps.store.read();
    const entry = registry.entries.find((e) => e.id === id);
    if (entry) {
      if (!mine(entry, caller)) throw new NotAuthorizedError(`session ${id} is not the caller's`);
      const after = await removeEntries(deps, registry, [entry], "removed by dnat del");
      await deps.store.write(after.registry);
      return;
    }
    if (caller.uid === undefined) {
      const removed = await deps.backend.removeTagged(new Set([id]));
      if (removed.length) {
        await purgeInstalledFlows(deps.conntrack, removed, deps.log);
        deps.log.info("Removed UDP forwarding of session {session} (dnat del)", { session: id });
        return;
      }
    }
    throw new NotAuthorizedError(`no DNAT session ${id}`);
  });
}

/** `dnat list`: the caller's sessions (root: every session, and rules only the kernel holds). */
export async function listSessions(
  deps: AdministerDeps,
  caller: Caller,
  json: boolean,
): Promise<void> {
  const registry = await deps.store.read();
  const entries = forwardingEntries(registry).filter((e) => mine(e, caller));
  const known = new Set(registry.entries.map((e) => e.id));
  const kernel = caller.uid === undefined
    ? (await deps.backend.list()).filter((s) => !known.has(s.id))
    : [];
  const running = await deps.processes.lookup([
    ...entries.map((e) => e.owner.pid),
    ...kernel.map((s) => s.owner.pid),
  ]);
  const listed: Listed[] = [
    ...entries.map((e) => ({
      ...toInstalled(e.forwarding.session),
      alive: isAlive(e.owner, running),
      registered: true,
      uid: e.uid,
      rule: e.rule,
      ...(e.removing !== undefined ? { removing: e.removing } : {}),
    })),
    ...kernel.map((s) => ({ ...s, alive: isAlive(s.owner, running), registered: false })),
  ];
  if (json) return deps.print(JSON.stringify(listed) + "\n");
  if (listed.length === 0) return deps.print("no xferproxy DNAT sessions\n");
  for (const s of listed) {
    const client = `${s.client}:${s.clientPort ?? "*"}`;
    const tcp = s.tcpServerPort === undefined
      ? ""
      : ` (tcp -> ${formatPorts(s.server, s.tcpServerPort, 1)})`;
    deps.print(
      `${s.id} owner ${s.owner.pid}${s.alive ? "" : " (gone)"}${
        s.registered ? "" : " (kernel only)"
      }${s.rule === 0 ? " forward" : ""}${
        s.removing === undefined ? "" : " (removing)"
      }  ${client} -> ${formatPorts(s.proxy, s.proxyPort, s.portCount)} -> ${
        formatPorts(s.server, s.serverPort, s.portCount)
      }${tcp}\n`,
    );
  }
}

/**
 * `dnat reap`: removes sessions whose owner has ended (the caller's, or as
 * root every one, including orphaned kernel rules). `all` (root only):
 * every session, then our chains or table.
 * @throws {NotAuthorizedError} for `all` through sudo
 */
export async function reapSessions(
  deps: AdministerDeps,
  caller: Caller,
  all: boolean,
): Promise<number> {
  if (all && caller.uid !== undefined) {
    throw new NotAuthorizedError("reap --all removes every session: run it as root");
  }
  return await deps.store.lock(async () => {
    const registry = await deps.store.read();
    if (all) {
      const kernel = await deps.backend.list();
      await removeEntries(deps, registry, registry.entries, "reap --all");
      const known = new Set(registry.entries.map((e) => e.id));
      const strangers = kernel.filter((s) => !known.has(s.id));
      await deps.backend.removeTagged(new Set(strangers.map((s) => s.id)));
      await purgeInstalledFlows(deps.conntrack, strangers, deps.log);
      await deps.backend.teardown();
      await deps.store.write(emptyRegistry());
      deps.log.info("Removed all xferproxy UDP forwarding ({count} sessions) and its chains", {
        count: registry.entries.length + strangers.length,
      });
      return registry.entries.length + strangers.length;
    }
    const running = await deps.processes.lookup(registry.entries.map((e) => e.owner.pid));
    const dead = registry.entries.filter((e) => mine(e, caller) && !isAlive(e.owner, running));
    await deps.store.write((await removeEntries(deps, registry, dead, "reaped")).registry);
    if (caller.uid !== undefined) return dead.length;
    const { reaped } = await reconcileKernel(deps, await deps.store.read());
    return dead.length + reaped;
  });
}
