/**
 * What /proc says about processes and sockets, parsed. Pure: the text comes
 * in through `ProcReader`, implemented over libc in the DNAT service and
 * over cat(1)/ls(1) in the one-shot privileged call (Deno lets only a fully
 * privileged process read /proc itself).
 * @module
 */

import { type IpAddress, parseIp } from "../net/ip.ts";

/** Reads /proc. */
export interface ProcReader {
  /** Files' texts by path; a file that cannot be read (its process is gone) is left out. */
  readTexts(paths: readonly string[]): Promise<Map<string, string>>;
  /** The targets of the symbolic links in a directory (/proc/PID/fd); [] when unreadable. */
  linkTargets(dir: string): Promise<string[]>;
  /**
   * The established TCP connections among the sockets process `pid` holds, read from the
   * sockets themselves ([] when the process is gone); undefined where this reader cannot, and
   * the TCP tables are read instead.
   */
  heldTcp?(pid: number): Promise<TcpConnection[] | undefined>;
}

/** One file's text; undefined when it cannot be read. */
export async function readProcText(proc: ProcReader, path: string): Promise<string | undefined> {
  return (await proc.readTexts([path])).get(path);
}

/** Linux's USER_HZ: /proc counts process times in these ticks per second on every architecture. */
const TICKS_PER_SECOND = 100;

/** The fields of /proc/PID/stat this code uses. */
export interface ProcStat {
  readonly pid: number;
  /** The command name (15 characters at most; set by the process, so never trusted alone). */
  readonly comm: string;
  /** R, S, D, Z (zombie: exited, not yet reaped) … */
  readonly state: string;
  readonly ppid: number;
  /** Start time in clock ticks since boot. */
  readonly startTicks: number;
  /** The exit status as waitpid reports it, meaningful for a zombie (Linux 3.5+). */
  readonly exitCode?: number;
}

/** Parses /proc/PID/stat; the command name may hold spaces and parentheses. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).trim().split(" ");
  // rest[0] is field 3 (state): field n is rest[n - 3].
  const ppid = Number(rest[1]);
  const startTicks = Number(rest[19]);
  const exitCode = rest[49] === undefined ? undefined : Number(rest[49]);
  if (
    !Number.isSafeInteger(pid) || !Number.isSafeInteger(ppid) || !Number.isSafeInteger(startTicks)
  ) {
    return undefined;
  }
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0] ?? "",
    ppid,
    startTicks,
    ...(exitCode !== undefined && Number.isSafeInteger(exitCode) ? { exitCode } : {}),
  };
}

/** The real and effective uids from /proc/PID/status. */
export function parseUids(status: string): { real: number; effective: number } | undefined {
  const m = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
  return m ? { real: Number(m[1]), effective: Number(m[2]) } : undefined;
}

/** The boot time (seconds since the epoch) from /proc/stat. */
export function parseBootTime(stat: string): number | undefined {
  const m = /^btime (\d+)$/m.exec(stat);
  return m ? Number(m[1]) : undefined;
}

/**
 * A process's start as milliseconds since the epoch, 10 ms resolution:
 * the same number for every reader during one boot, and a pid reused by
 * another process always gets another one.
 */
export function startMs(bootTime: number, startTicks: number): number {
  return bootTime * 1000 + startTicks * (1000 / TICKS_PER_SECOND);
}

/**
 * The cgroup v1 groups a process is in whose controllers include net_cls or net_prio, as
 * "controllers:path" from /proc/PID/cgroup text; [] where neither is mounted (cgroup v2 alone).
 * A socket another process receives takes on the receiver's class and priority in these.
 */
export function netClassGroups(text: string): string[] {
  return text.split("\n").flatMap((line) => {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    return controllers?.split(",").some((c) => c === "net_cls" || c === "net_prio")
      ? [`${controllers}:${path}`]
      : [];
  });
}

/** The socket inode a /proc/PID/fd link points at, if it is a socket. */
export function socketInode(target: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(target);
  return m ? Number(m[1]) : undefined;
}

/** One established TCP connection as /proc/net/tcp{,6} lists it. */
export interface TcpConnection {
  readonly local: { readonly ip: IpAddress; readonly port: number };
  readonly remote: { readonly ip: IpAddress; readonly port: number };
  readonly inode: number;
}

const TCP_ESTABLISHED = "01";

/**
 * An endpoint from an address's bytes (network order) and port: an IPv4 client of a dual-stack
 * listener (::ffff:a.b.c.d) is that IPv4 address, as sessions name it.
 */
function endpointOf(
  bytes: readonly number[],
  port: number,
): { ip: IpAddress; port: number } | undefined {
  const mapped = bytes.length === 16 && bytes.slice(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff && bytes[11] === 0xff;
  const ipText = bytes.length === 4 || mapped
    ? bytes.slice(-4).join(".")
    : Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16))
      .join(":");
  const ip = parseIp(ipText);
  return ip && Number.isSafeInteger(port) ? { ip, port } : undefined;
}

/** A /proc/net/tcp address: hex in host (little-endian) byte order per 32-bit word, then :port. */
function hexEndpoint(text: string): { ip: IpAddress; port: number } | undefined {
  const [hex, portHex] = text.split(":");
  if (!hex || !portHex || (hex.length !== 8 && hex.length !== 32)) return undefined;
  const bytes: number[] = [];
  for (let word = 0; word < hex.length; word += 8) {
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(hex.slice(word + b, word + b + 2), 16));
  }
  return endpointOf(bytes, parseInt(portHex, 16));
}

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * A struct sockaddr_in or sockaddr_in6 as getsockname(2) and getpeername(2) fill it (family in
 * host order, port and address in network order); undefined for any other family.
 */
export function parseSockaddr(bytes: Uint8Array): { ip: IpAddress; port: number } | undefined {
  if (bytes.length < 16) return undefined;
  const family = bytes[0]! | (bytes[1]! << 8);
  const port = (bytes[2]! << 8) | bytes[3]!;
  if (family === AF_INET) return endpointOf([...bytes.subarray(4, 8)], port);
  // sockaddr_in6: family, port, flowinfo (4), address (16), scope id (4).
  if (family === AF_INET6 && bytes.length >= 28) {
    return endpointOf([...bytes.subarray(8, 24)], port);
  }
  return undefined;
}

/** The established connections in /proc/net/tcp or /proc/net/tcp6 text. */
export function parseTcpTable(text: string): TcpConnection[] {
  const out: TcpConnection[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== TCP_ESTABLISHED) continue;
    const local = hexEndpoint(f[1] ?? "");
    const remote = hexEndpoint(f[2] ?? "");
    const inode = Number(f[9]);
    if (local && remote && Number.isSafeInteger(inode) && inode > 0) {
      out.push({ local, remote, inode });
    }
  }
  return out;
}

/** What `head -v` puts before each file. */
const HEADER = /^==> (.*) <==$/;

/** Splits `head -v` output into its files (how programs hand /proc to code without FFI). */
export function splitHeadOutput(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let path: string | undefined;
  let lines: string[] = [];
  const flush = () => {
    // head separates files with one empty line.
    if (path !== undefined) out.set(path, lines.join("\n").replace(/\n$/, ""));
  };
  for (const line of text.split("\n")) {
    const m = HEADER.exec(line);
    if (m) {
      flush();
      path = m[1];
      lines = [];
    } else {
      lines.push(line);
    }
  }
  flush();
  return out;
}

/** The argv that reads /proc files in one batch: `head -v`, whose output `splitHeadOutput` reads. */
export function headArgv(paths: readonly string[]): string[] {
  return ["head", "-v", "-c", "16777216", "--", ...paths];
}
