/**
 * Session owners: processes identified by pid and start time, read from
 * /proc. A session's rules live exactly as long as its owner; a pid reused
 * by another process has another start time and keeps nothing. Who may own
 * what is decided from the kernel's view only: the connecting process of
 * the service's socket, or the process that ran sudo.
 * @module
 */

import { type IpAddress, parseIp } from "../net/ip.ts";
import { NotAuthorizedError } from "./errors.ts";
import { type ProcessFacts, processFacts, sshOrigin } from "./ancestry.ts";
import { parseBootTime, parseStat, type ProcReader, startMs } from "./procfs.ts";
import { type Owner, sameStart } from "./types.ts";

/** A running process's start time (ms since the epoch) and real uid. */
export interface ProcessInfo {
  readonly start: number;
  readonly uid: number;
}

/** The processes the DNAT code asks about. */
export interface ProcessTable {
  /** Those of `pids` that run now (their start times); uids where cheap to know, else -1. */
  lookup(pids: readonly number[]): Promise<Map<number, ProcessInfo>>;
}

/** True when the owner runs now: same pid, same start time. */
export function isAlive(owner: Owner, running: ReadonlyMap<number, ProcessInfo>): boolean {
  const info = running.get(owner.pid);
  return info !== undefined && sameStart(owner, info.start);
}

/**
 * Start times of many processes from their /proc/PID/stat files, read in
 * one batch (one program run where /proc is read through programs).
 */
export function procProcessTable(proc: ProcReader): ProcessTable {
  return {
    async lookup(pids) {
      const unique = [...new Set(pids)].filter((p) => Number.isSafeInteger(p) && p > 0);
      const out = new Map<number, ProcessInfo>();
      if (unique.length === 0) return out;
      const texts = await proc.readTexts(["/proc/stat", ...unique.map((p) => `/proc/${p}/stat`)]);
      const boot = parseBootTime(texts.get("/proc/stat") ?? "");
      if (boot === undefined) throw new Error("Cannot read the boot time from /proc/stat");
      for (const pid of unique) {
        const stat = parseStat(texts.get(`/proc/${pid}/stat`) ?? "");
        // A zombie has ended: its session is over even before its parent reaps it.
        if (stat && stat.pid === pid && stat.state !== "Z") {
          out.set(pid, { start: startMs(boot, stat.startTicks), uid: -1 });
        }
      }
      return out;
    },
  };
}

/** Who a session is and where its client connected, as the kernel says. */
export interface SessionIdentity {
  readonly owner: Owner;
  readonly uid: number;
  readonly client: { readonly ip: IpAddress; readonly port: number };
  readonly proxy: { readonly ip: IpAddress; readonly port: number };
}

/**
 * The identity of a session process: its start, its user, and the TCP
 * connection of the sshd it descends from. Read twice around the walk, so a
 * process replaced during it is refused.
 * @throws {NotAuthorizedError}
 */
export async function identifySession(proc: ProcReader, pid: number): Promise<SessionIdentity> {
  const before = await processFacts(proc, pid);
  if (!before || before.stat.state === "Z") {
    throw new NotAuthorizedError(`process ${pid} is not running`);
  }
  const origin = await sshOrigin(proc, before);
  const after = await processFacts(proc, pid);
  if (after?.start !== before.start) {
    throw new NotAuthorizedError(`process ${pid} ended during the check`);
  }
  return {
    owner: { pid, start: before.start },
    uid: before.uid,
    client: origin.connection.remote,
    proxy: origin.connection.local,
  };
}

/**
 * The session behind a privileged call made through sudo: the process that
 * ran sudo (sudo's parent; or our parent, where sudo replaced itself), which
 * must be the calling user's.
 * @throws {NotAuthorizedError}
 */
export async function sudoCaller(
  proc: ProcReader,
  self: number,
  callerUid: number,
): Promise<ProcessFacts> {
  const me = await processFacts(proc, self);
  const parent = me && await processFacts(proc, me.stat.ppid);
  if (!parent) throw new NotAuthorizedError("cannot find the process that ran sudo");
  // sudo is setuid root: its real uid is the caller's, its effective uid root's. Only sudo
  // itself can be a process of that name with root's effective uid in a user's tree.
  const runner = parent.euid === 0 && parent.stat.comm === "sudo"
    ? await processFacts(proc, parent.stat.ppid)
    : parent;
  if (!runner || runner.uid !== callerUid) {
    throw new NotAuthorizedError("the process that ran sudo is not the calling user's");
  }
  return runner;
}

/**
 * Root names an owner and addresses itself (administration and tests): the
 * owner must run; nothing is checked against sshd.
 * @throws {NotAuthorizedError}
 */
export async function rootNamedOwner(
  table: ProcessTable,
  pid: number,
): Promise<Owner> {
  const info = (await table.lookup([pid])).get(pid);
  if (!info) throw new NotAuthorizedError(`owner process ${pid} is not running`);
  return { pid, start: info.start };
}

/** `ip` as the canonical text of an address, for comparisons with what a caller named. */
export function sameAddress(a: IpAddress, b: string): boolean {
  return parseIp(b)?.text === a.text;
}
