/**
 * A conntrack table behind a recording runner, answering as conntrack-tools 1.4.7 did by hand in
 * a network namespace: `-L [-f ipv4|ipv6] [--mark M]` lists the family's entries (those whose mark
 * equals M), `-D` and `-R` delete what their filters match (`-p`, `--orig-src`, `--orig-dst`,
 * `--sport`, `--dport`, `--reply-src`, `--mark`) and print it; a delete matching nothing exits 1.
 * @module
 */

import { type RecordingRunner, recordingRunner } from "./runner.ts";

/** One entry as `conntrack -L` prints it: mark in decimal, replies from `server`. */
export function entryLine(
  protocol: "udp" | "tcp",
  from: { ip: string; port: number },
  to: { ip: string; port: number },
  options: { mark?: number; server?: string; packets?: number } = {},
): string {
  const server = options.server ?? to.ip;
  const packets = options.packets ?? 1;
  const state = protocol === "tcp" ? "ESTABLISHED " : "";
  return `${protocol.padEnd(8)} ${protocol === "tcp" ? 6 : 17} 29 ${state}src=${from.ip} ` +
    `dst=${to.ip} sport=${from.port} dport=${to.port} packets=${packets} bytes=${packets * 100} ` +
    `src=${server} dst=${from.ip} sport=${to.port} dport=${from.port} packets=0 bytes=0 ` +
    `mark=${options.mark ?? 0} use=1`;
}

/** The table now, and the runner that lists and deletes in it. */
export interface ConntrackTable {
  readonly runner: RecordingRunner;
  entries(): string[];
}

/** A runner answering like conntrack over `lines`. */
export function conntrackTable(lines: readonly string[]): ConntrackTable {
  let entries = [...lines];
  const field = (entry: string, name: string) => new RegExp(`\\b${name}=(\\S+)`).exec(entry)?.[1];
  const matches = (entry: string, args: readonly string[]) => {
    const arg = (name: string) => args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
    const family = arg("-f");
    const ipv6 = (field(entry, "src") ?? "").includes(":");
    const mark = arg("--mark") ?? arg("-m");
    const wanted: [string | undefined, string | undefined][] = [
      [arg("--orig-src"), field(entry, "src")],
      [arg("--orig-dst"), field(entry, "dst")],
      [arg("--sport"), field(entry, "sport")],
      [arg("--dport"), field(entry, "dport")],
      // The reply direction's source: the second src= of the line.
      [arg("--reply-src"), /\bsrc=\S+.*?\bsrc=(\S+)/.exec(entry)?.[1]],
    ];
    return (family === undefined || (family === "ipv6") === ipv6) &&
      (arg("-p") === undefined || entry.startsWith(`${arg("-p")} `)) &&
      (mark === undefined || Number(field(entry, "mark")) === Number(mark)) &&
      wanted.every(([want, have]) => want === undefined || want === have);
  };
  const remove = (args: readonly string[]) => {
    const found = entries.filter((e) => matches(e, args));
    entries = entries.filter((e) => !found.includes(e));
    return found;
  };
  const runner = recordingRunner((call) => {
    if (call.args[0] === "-L") {
      return { stdout: entries.filter((e) => matches(e, call.args)).map((e) => e + "\n").join("") };
    }
    if (call.args[0] === "-R") {
      const lines = (call.stdin ?? "").trim().split("\n");
      return { stdout: lines.flatMap((l) => remove(l.split(" "))).map((e) => e + "\n").join("") };
    }
    const found = remove(call.args);
    return found.length ? { stdout: found.map((e) => e + "\n").join("") } : {
      code: 1,
      stderr: "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.",
    };
  });
  return { runner, entries: () => [...entries] };
}
