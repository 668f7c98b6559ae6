/**
 * Who a session is, as the kernel says: the process, its start, its owner,
 * and the SSH connection it descends from. A session process is sshd's
 * grandchild (sshd's root monitor → the user's sshd → the ForceCommand);
 * the monitor holds the client's TCP connection, whose two ends are the
 * client and the proxy addresses. Nothing the caller wrote (its
 * environment, a number in a request) is read, so no caller can claim
 * another client's address.
 * @module
 */

import { NotAuthorizedError } from "./errors.ts";
import {
  parseBootTime,
  parseStat,
  parseTcpTable,
  parseUids,
  type ProcReader,
  type ProcStat,
  readProcText,
  socketInode,
  startMs,
  type TcpConnection,
} from "./procfs.ts";
import type { Owner } from "./types.ts";

/** A running process as /proc shows it. */
export interface ProcessFacts {
  readonly pid: number;
  /** Real uid. */
  readonly uid: number;
  /** Effective uid (0 for sudo, which is setuid root, while the caller's is its real one). */
  readonly euid: number;
  /** Milliseconds since the epoch (10 ms resolution). */
  readonly start: number;
  readonly stat: ProcStat;
}

/** The SSH connection a session descends from. */
export interface SshOrigin {
  /** sshd's privileged monitor process of this connection. */
  readonly sshd: number;
  readonly connection: TcpConnection;
}

/** How far up from the session sshd's monitor may be (sshd → shell → session is three). */
const MAX_DEPTH = 8;
/** The names sshd's processes run under (OpenSSH 9.8+ splits off sshd-session). */
const SSHD_NAMES = new Set(["sshd", "sshd-session"]);

/** The boot time, read once per reader. */
const bootTimes = new WeakMap<ProcReader, Promise<number | undefined>>();

function bootTime(proc: ProcReader): Promise<number | undefined> {
  const known = bootTimes.get(proc) ??
    readProcText(proc, "/proc/stat").then((t) => (t === undefined ? undefined : parseBootTime(t)));
  bootTimes.set(proc, known);
  return known;
}

/** A process's facts; undefined when it does not run (or /proc cannot be read). */
export async function processFacts(
  proc: ProcReader,
  pid: number,
): Promise<ProcessFacts | undefined> {
  if (!Number.isSafeInteger(pid) || pid < 1) return undefined;
  const [texts, boot] = await Promise.all([
    proc.readTexts([`/proc/${pid}/stat`, `/proc/${pid}/status`]),
    bootTime(proc),
  ]);
  const statText = texts.get(`/proc/${pid}/stat`);
  const statusText = texts.get(`/proc/${pid}/status`);
  const stat = statText === undefined ? undefined : parseStat(statText);
  const uids = statusText === undefined ? undefined : parseUids(statusText);
  if (!stat || !uids || boot === undefined || stat.pid !== pid) return undefined;
  return {
    pid,
    uid: uids.real,
    euid: uids.effective,
    start: startMs(boot, stat.startTicks),
    stat,
  };
}

/** The owner identity of a running, unreaped process. */
export function ownerOf(facts: ProcessFacts): Owner {
  return { pid: facts.pid, start: facts.start };
}

/**
 * Finds the SSH connection `session` descends from: up its parents, past
 * processes of its own uid, to the first root process, which must be
 * sshd's monitor holding exactly one established TCP connection.
 * @throws {NotAuthorizedError} when the session is no proxy user's SSH session
 */
export async function sshOrigin(proc: ProcReader, session: ProcessFacts): Promise<SshOrigin> {
  if (session.uid === 0) {
    throw new NotAuthorizedError(`process ${session.pid} runs as root, not as a proxy user`);
  }
  let current = session;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const parent = await processFacts(proc, current.stat.ppid);
    if (!parent || parent.pid <= 1) break;
    if (parent.uid === session.uid) {
      current = parent;
      continue;
    }
    // The first process of another user: only root's sshd monitor may stand here. A user may
    // name a process "sshd"; only root can run a root process, so the name is sshd's own.
    if (parent.uid !== 0 || !SSHD_NAMES.has(parent.stat.comm)) {
      throw new NotAuthorizedError(
        `process ${session.pid} was not started by sshd (its ancestor ${parent.pid} is "${parent.stat.comm}" of uid ${parent.uid})`,
      );
    }
    const connection = await heldConnection(proc, parent.pid);
    // Still that very monitor: its pid was not reused while its sockets were read.
    const after = await processFacts(proc, parent.pid);
    if (!after || after.start !== parent.start || after.uid !== 0) {
      throw new NotAuthorizedError(
        `sshd process ${parent.pid} ended while its connection was read`,
      );
    }
    return { sshd: parent.pid, connection };
  }
  throw new NotAuthorizedError(`process ${session.pid} was not started by sshd`);
}

/** How often the TCP table is read again when the monitor's socket is missing from it. */
const TCP_TABLE_READS = 3;

/**
 * The one established TCP connection sshd's monitor holds: read from its sockets themselves where
 * the reader can (the service: a lookup per socket, whatever the number of connections), else
 * found in the TCP tables by socket inode.
 */
async function heldConnection(proc: ProcReader, sshd: number): Promise<TcpConnection> {
  const held = (await proc.heldTcp?.(sshd)) ?? await heldFromTables(proc, sshd);
  if (held.length !== 1) {
    throw new NotAuthorizedError(
      `sshd process ${sshd} holds ${held.length} established TCP connections, not one`,
    );
  }
  return held[0] as TcpConnection;
}

/**
 * The established connections of `sshd`'s sockets in /proc/net/tcp{,6}: a walk of every TCP
 * socket the kernel holds, and a parse of each namespace's. The kernel writes the table a page at
 * a time, so while connections come and go a socket can be listed twice (one socket, counted
 * once here) or skipped (the table is read again): under 40 concurrent uploads a session was
 * refused as holding "2 established TCP connections".
 */
async function heldFromTables(proc: ProcReader, sshd: number): Promise<TcpConnection[]> {
  const inodes = new Set(
    (await proc.linkTargets(`/proc/${sshd}/fd`)).map(socketInode).filter((i) => i !== undefined),
  );
  let held = new Map<number, TcpConnection>();
  for (let read = 0; read < TCP_TABLE_READS && held.size === 0; read++) {
    const tables = await proc.readTexts([`/proc/${sshd}/net/tcp`, `/proc/${sshd}/net/tcp6`]);
    held = new Map(
      [...tables.values()].flatMap(parseTcpTable).filter((c) => inodes.has(c.inode))
        .map((c) => [c.inode, c]),
    );
  }
  return [...held.values()];
}
