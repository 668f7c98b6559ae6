/**
 * A fake /proc: processes with their parent, uid, name, start and file
 * descriptors, and each network namespace's TCP table, rendered as the
 * kernel writes /proc/PID/stat, /proc/PID/status, /proc/stat and
 * /proc/PID/net/tcp{,6}.
 * @module
 */

import type { ProcReader } from "../../src/dnat/procfs.ts";

/** One fake process. */
export interface FakeProcess {
  readonly pid: number;
  readonly ppid: number;
  readonly uid: number;
  /** Effective uid, when not the real one (sudo: 0). */
  readonly euid?: number;
  readonly comm: string;
  readonly startTicks?: number;
  /** Zombie state and exit status. */
  readonly exitCode?: number;
  /** Inodes of sockets among its fds. */
  readonly sockets?: readonly number[];
}

/** One established TCP connection, addresses as /proc/net/tcp writes them. */
export interface FakeTcp {
  /** `0102A8C0:0016` style (IPv4) or 32 hex digits (IPv6) with :port. */
  readonly local: string;
  readonly remote: string;
  readonly inode: number;
  /** "01" established (default), "0A" listen … */
  readonly state?: string;
}

/** 198.18.1.2:48686 in /proc/net/tcp's notation (little-endian words). */
export function hex4(ip: string, port: number): string {
  const bytes = ip.split(".").map(Number).reverse();
  const word = bytes.map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
  return `${word}:${port.toString(16).padStart(4, "0").toUpperCase()}`;
}

/** An IPv6 address (16 bytes) in /proc/net/tcp6's notation. */
export function hex6(bytes: readonly number[], port: number): string {
  let out = "";
  for (let w = 0; w < 16; w += 4) {
    out += bytes.slice(w, w + 4).reverse().map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  return `${out.toUpperCase()}:${port.toString(16).padStart(4, "0").toUpperCase()}`;
}

/** The stat line of a process. */
export function statLine(p: FakeProcess): string {
  const fields = Array.from({ length: 50 }, () => "0");
  fields[0] = p.exitCode === undefined ? "S" : "Z"; // field 3
  fields[1] = String(p.ppid); // field 4
  fields[19] = String(p.startTicks ?? 1000); // field 22
  fields[49] = String(p.exitCode ?? 0); // field 52
  return `${p.pid} (${p.comm}) ${fields.join(" ")}\n`;
}

function table(rows: readonly FakeTcp[]): string {
  const header =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
  return header +
    rows.map((r, i) =>
      `   ${i}: ${r.local} ${r.remote} ${
        r.state ?? "01"
      } 00000000:00000000 00:00000000 00000000     0        0 ${r.inode} 1 0000000000000000 20 4 30 10 -1\n`
    ).join("");
}

/** A reader over the processes and TCP tables given; `reads` records every path read. */
export function fakeProc(
  processes: readonly FakeProcess[],
  tcp: readonly FakeTcp[] = [],
  bootTime = 1_796_000_000,
): ProcReader & { reads: string[] } {
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const reads: string[] = [];
  const read = (path: string): string | undefined => {
    reads.push(path);
    if (path === "/proc/stat") return `cpu  1 2 3\nbtime ${bootTime}\n`;
    const m = /^\/proc\/(\d+)\/(stat|status|net\/tcp6?)$/.exec(path);
    const p = m ? byPid.get(Number(m[1])) : undefined;
    if (!m || !p) return undefined;
    if (m[2] === "stat") return statLine(p);
    if (m[2] === "status") {
      const e = p.euid ?? p.uid;
      return `Name:\t${p.comm}\nUid:\t${p.uid}\t${e}\t${e}\t${e}\n`;
    }
    const six = m[2] === "net/tcp6";
    return table(tcp.filter((t) => (t.local.length > 13) === six));
  };
  return {
    reads,
    readTexts(paths) {
      const out = new Map<string, string>();
      for (const path of paths) {
        const text = read(path);
        if (text !== undefined) out.set(path, text);
      }
      return Promise.resolve(out);
    },
    linkTargets(dir) {
      reads.push(dir);
      const m = /^\/proc\/(\d+)\/fd$/.exec(dir);
      const p = m ? byPid.get(Number(m[1])) : undefined;
      if (!p) return Promise.resolve([]);
      return Promise.resolve([
        "/dev/null",
        "pipe:[7]",
        ...(p.sockets ?? []).map((i) => `socket:[${i}]`),
      ]);
    },
  };
}

/**
 * One sshd session as /proc shows it: sshd's monitor 600 holds client 198.18.1.2:48686 → proxy
 * 198.18.1.1:22, session 700 is the user's (uid 1005), and 900 is the same user's process
 * outside sshd's tree. For the service's session tests.
 */
export const SSHD_SESSION = (() => {
  const uid = 1005;
  const tree: FakeProcess[] = [
    { pid: 1, ppid: 0, uid: 0, comm: "systemd" },
    { pid: 600, ppid: 1, uid: 0, comm: "sshd", sockets: [4242] },
    { pid: 601, ppid: 600, uid, comm: "sshd" },
    { pid: 700, ppid: 601, uid, comm: "xferproxy", startTicks: 300 },
    { pid: 900, ppid: 1, uid, comm: "sleep", startTicks: 400 },
  ];
  const tcp = [{ local: hex4("198.18.1.1", 22), remote: hex4("198.18.1.2", 48686), inode: 4242 }];
  return { boot: 1_796_000_000, uid, tree, tcp };
})();
