/**
 * How the DNAT service's sessions end: each owner watched through its pidfd,
 * the ends that come together removed as one change, and one closing line per
 * session saying what it was and what it moved.
 * @module
 */

import type { Ended } from "./deps.ts";
import { removeEntries } from "./remove.ts";
import { formatPorts, type Owner } from "./types.ts";
import type { DnatDeps } from "./deps.ts";
import type { FlowCounters } from "./conntrack.ts";
import type { RegistryEntry } from "./registry.ts";
import type { ServiceMetrics } from "./service_metrics.ts";

/** How a process ended, as far as the kernel still knew. */
export interface ExitStatus {
  readonly code?: number;
  readonly signal?: number;
}

/** Learns of owners' exits (platform/exit_watch.ts: pidfds). */
export interface ExitWatch {
  /**
   * Calls `onExit` once when the owner exits; `pidfd` is the peer's own when
   * the socket gave one. Undefined when the owner is already gone (or its
   * pid is another process's now).
   */
  watch(
    owner: Owner,
    pidfd: number | undefined,
    onExit: (status: ExitStatus) => void,
  ): Promise<{ cancel(): void } | undefined>;
  /** Closes a peer's pidfd no watch took: its connection ended without registering. */
  release(pidfd: number): void;
}

/** What the SSH leg carried each way, from conntrack. */
export interface SshCounters {
  readonly in: FlowCounters;
  readonly out: FlowCounters;
}

/** What ending sessions needs beyond the DNAT core's dependencies. */
export interface EndingsDeps
  extends Pick<DnatDeps, "log" | "now" | "store" | "backend" | "conntrack"> {
  readonly exits: ExitWatch;
  /** The client connection's counters once it has closed (or the wait ran out). */
  sshCounters(ssh: NonNullable<RegistryEntry["ssh"]>): Promise<SshCounters | undefined>;
  readonly metrics?: ServiceMetrics;
}

/** The closing line's fields for an ended session. */
export function closingFields(
  ended: Ended,
  status: ExitStatus,
  ssh: SshCounters | undefined,
  now: number,
): Record<string, unknown> {
  const e = ended.entry;
  return {
    session: e.id,
    user: e.user ?? `uid ${e.uid}`,
    rule: e.rule,
    upstream: e.upstream ?? "-",
    duration_ms: Math.max(0, now - e.created),
    exit: status.code ?? (status.signal !== undefined ? `signal ${status.signal}` : "unknown"),
    ...(e.ssh ? { client: `${formatPorts(e.ssh.client.ip, e.ssh.client.port, 1)}` } : {}),
    ...(ssh
      ? {
        ssh_bytes_in: ssh.in.bytes,
        ssh_bytes_out: ssh.out.bytes,
      }
      : {}),
    ...(ended.udp ? { udp_bytes: ended.udp.bytes, udp_packets: ended.udp.packets } : {}),
  };
}

/** The watches on owners and the ends they bring. */
export interface SessionEndings {
  /** Watches `owner`; false when it is gone already (or its pid another process's). */
  watch(id: string, owner: Owner, pidfd: number | undefined): Promise<boolean>;
  /** Ends a session; resolves once it is removed (with whatever else ended meanwhile). */
  end(id: string, status: ExitStatus): Promise<void>;
  /** Marks a session as watched before its watch starts: a registration under way. */
  claim(id: string): void;
  /** Drops a claim or a watch without ending anything. */
  release(id: string): void;
  /** True while a watch (or a claim) covers the session. */
  watches(id: string): boolean;
  /** Writes closing lines for sessions others removed (a poll, `dnat del`, `reap`). */
  closed(ended: readonly Ended[]): void;
  /** Stops every watch (the service stops; sessions keep their rules). */
  close(): void;
}

/** Creates the endings of the service's sessions. */
export function sessionEndings(deps: EndingsDeps): SessionEndings {
  const watched = new Map<string, { cancel(): void }>();
  const log = deps.log;

  const writeClosing = (ended: Ended, status: ExitStatus, how: "exited" | "removed") => {
    const ssh = ended.entry.ssh;
    (ssh ? deps.sshCounters(ssh).catch(() => undefined) : Promise.resolve(undefined)).then(
      (counters) => {
        log.info("Connection closed", closingFields(ended, status, counters, deps.now()));
        deps.metrics?.ended({
          rule: ended.entry.rule,
          reason: how,
          ...(ended.udp ? { udp: ended.udp } : {}),
          ...(counters ? { ssh: { in: counters.in.bytes, out: counters.out.bytes } } : {}),
        });
      },
    );
  };

  /** Ends waiting for the next batch: a thousand owners exiting at once are one change. */
  const ending = new Map<string, ExitStatus>();
  let draining: Promise<void> | undefined;
  const removeBatch = async () => {
    // Let every exit the kernel reported in this turn join the batch.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const batch = new Map(ending);
    ending.clear();
    const ended = await deps.store.lock(async () => {
      const registry = await deps.store.read();
      // Removed meanwhile (dnat del, reap): whoever removed them wrote their lines.
      const doomed = registry.entries.filter((e) => batch.has(e.id));
      if (doomed.length === 0) return [];
      const after = await removeEntries(deps, registry, doomed, "session ended");
      await deps.store.write(after.registry);
      return after.ended;
    });
    for (const e of ended) writeClosing(e, batch.get(e.entry.id) ?? {}, "exited");
  };
  /** Ends a session; resolves once it is removed (with whatever else ended meanwhile). */
  const end = (id: string, status: ExitStatus): Promise<void> => {
    watched.delete(id);
    ending.set(id, status);
    draining ??= (async () => {
      try {
        while (ending.size) await removeBatch();
      } finally {
        draining = undefined;
      }
    })();
    return draining;
  };

  const watch = async (id: string, owner: Owner, pidfd: number | undefined): Promise<boolean> => {
    const handle = await deps.exits.watch(owner, pidfd, (status) => {
      end(id, status).catch((error) =>
        log.error("Ending session {session} failed: {error}", { session: id, error: String(error) })
      );
    });
    if (handle) watched.set(id, handle);
    return handle !== undefined;
  };

  return {
    watch,
    end,
    claim: (id) => void watched.set(id, { cancel() {} }),
    release: (id) => void watched.delete(id),
    watches: (id) => watched.has(id),
    closed(ended) {
      for (const e of ended) {
        watched.get(e.entry.id)?.cancel();
        watched.delete(e.entry.id);
        writeClosing(e, {}, "removed");
      }
    },
    close() {
      for (const handle of watched.values()) handle.cancel();
      watched.clear();
    },
  };
}
