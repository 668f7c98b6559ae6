/**
 * Session owners: processes identified by pid and start time. A session's
 * rules live exactly as long as its owner; a pid reused by another process
 * has another start time and keeps nothing. The privileged call also checks
 * that the owner is the caller's own SSH session for the addresses asked.
 * Parsing is pure; `ProcessTable` is implemented with ps(1) in platform/.
 * @module
 */

import { parseIp } from "../net/ip.ts";
import type { AddRequest } from "./contract.ts";
import { NotAuthorizedError } from "./authorize.ts";
import type { Owner } from "./types.ts";

/** A running process's start time (seconds since the epoch) and real uid. */
export interface ProcessInfo {
  readonly start: number;
  readonly uid: number;
}

/** The processes the DNAT code asks about. */
export interface ProcessTable {
  /** Those of `pids` that run now. */
  lookup(pids: readonly number[]): Promise<Map<number, ProcessInfo>>;
  /** A process's SSH_CONNECTION variable (sshd sets it for every session). */
  sshConnection(pid: number): Promise<string | undefined>;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Parses `ps -o pid=,uid=,lstart=` output taken with TZ=UTC and LC_ALL=C. */
export function parsePs(text: string): Map<number, ProcessInfo> {
  const table = new Map<number, ProcessInfo>();
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+\w{3}\s+(\w{3})\s+(\d{1,2})\s+(\d\d):(\d\d):(\d\d)\s+(\d{4})\s*$/
      .exec(line);
    if (!m) continue;
    const month = MONTHS.indexOf(m[3] as string);
    if (month < 0) continue;
    const start = Date.UTC(
      Number(m[8]),
      month,
      Number(m[4]),
      Number(m[5]),
      Number(m[6]),
      Number(m[7]),
    ) / 1000;
    table.set(Number(m[1]), { uid: Number(m[2]), start });
  }
  return table;
}

/** One variable of a NUL-separated environment block (/proc/PID/environ). */
export function environValue(environ: string, name: string): string | undefined {
  const prefix = `${name}=`;
  return environ.split("\0").find((entry) => entry.startsWith(prefix))?.slice(prefix.length);
}

/** True when the owner runs now: same pid, same start time. */
export function isAlive(owner: Owner, running: ReadonlyMap<number, ProcessInfo>): boolean {
  return running.get(owner.pid)?.start === owner.start;
}

/**
 * Checks the owner a caller names and returns its identity. Through sudo
 * (`callerUid` set) the owner must be the caller's own process, and its
 * SSH_CONNECTION must be the client and proxy addresses of the request: a
 * user cannot make rules for another user's process or another client.
 * @throws {NotAuthorizedError}
 */
export async function verifyOwner(
  table: ProcessTable,
  request: AddRequest,
  callerUid: number | undefined,
): Promise<Owner> {
  const pid = request.owner;
  const before = (await table.lookup([pid])).get(pid);
  if (!before) throw new NotAuthorizedError(`owner process ${pid} is not running`);
  if (callerUid !== undefined) {
    if (before.uid !== callerUid) {
      throw new NotAuthorizedError(`process ${pid} is not the caller's`);
    }
    const connection = await table.sshConnection(pid);
    const [client, , proxy] = (connection ?? "").split(" ");
    const same = (a: string | undefined, b: string) => parseIp(a ?? "")?.text === b;
    if (!same(client, request.client.text) || !same(proxy, request.proxy.text)) {
      throw new NotAuthorizedError(
        `process ${pid} is not an SSH session from ${request.client.text} to ${request.proxy.text}`,
      );
    }
  }
  // The checks above read a process: make sure it is still the same one.
  const after = (await table.lookup([pid])).get(pid);
  if (after?.start !== before.start) {
    throw new NotAuthorizedError(`owner process ${pid} ended during the check`);
  }
  return { pid, start: before.start };
}
