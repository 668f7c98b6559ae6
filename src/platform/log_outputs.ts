/**
 * The real log outputs: an append-only file, syslog through one long-lived
 * `logger(1)` process, and stderr.
 * @module
 */

import type { LogOutputs } from "../log/mod.ts";
import { type AppendHandle, openSharedAppend } from "./shared_files.ts";

const encoder = new TextEncoder();

/** Where the real outputs should go. */
export interface RealOutputOptions {
  /** `<log_directory>`; when set, lines go to `<dir>/xferproxy.log` instead of syslog. */
  directory?: string;
  /** Also write to stderr (never in reverse mode). */
  stderr?: boolean;
  /** syslog socket, for tests; default /dev/log. */
  syslogSocket?: string;
}

/** Opens the outputs; `close()` flushes and releases them. */
export function openLogOutputs(
  options: RealOutputOptions,
): LogOutputs & { close(): Promise<void> } {
  const closers: Array<() => Promise<void> | void> = [];
  const outputs: LogOutputs & { close(): Promise<void> } = {
    now: () => new Date(),
    pid: Deno.pid,
    close: async () => {
      for (const close of closers) await close();
    },
  };
  const file = options.directory ? openLogFile(`${options.directory}/xferproxy.log`) : undefined;
  if (file) {
    // One write per line with O_APPEND: lines of concurrent sessions never interleave.
    outputs.appendFile = (line) => {
      try {
        file.write(line + "\n");
      } catch { /* disk full or file removed: logging must never end a session */ }
    };
    closers.push(() => file.close());
  } else {
    // No log directory, or its file cannot be opened: syslog rather than nothing.
    const syslog = spawnLogger(options.syslogSocket);
    outputs.syslog = syslog.send;
    closers.push(syslog.close);
  }
  if (options.stderr) outputs.stderr = (line) => Deno.stderr.writeSync(encoder.encode(line + "\n"));
  return outputs;
}

/**
 * Opens the shared log file for appending. Sessions of different users share
 * it through the log directory's group, so it is created group-writable; a
 * symlink or FIFO planted in its place is refused (see shared_files.ts), and
 * the caller falls back to syslog. Returns undefined when it cannot be opened.
 */
function openLogFile(path: string): AppendHandle | undefined {
  try {
    return openSharedAppend(path);
  } catch {
    return undefined;
  }
}

const FACILITY_DAEMON = 3;

function spawnLogger(
  socket = "/dev/log",
): { send(severity: number, line: string): void; close(): Promise<void> } {
  let child: Deno.ChildProcess | undefined;
  let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let pending: Promise<void> = Promise.resolve();
  try {
    child = new Deno.Command("logger", {
      args: [
        "--id=" + Deno.pid,
        "-t",
        "xferproxy",
        "--prio-prefix",
        "--socket-errors=off",
        "-u",
        socket,
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    writer = child.stdin.getWriter();
  } catch {
    // No logger(1) or not permitted: logging is best effort and must never break a session.
  }
  return {
    send(severity, line) {
      if (!writer) return;
      const w = writer;
      const bytes = encoder.encode(`<${FACILITY_DAEMON * 8 + severity}>${line}\n`);
      // logger(1) is gone: there is nowhere left to say so, and logging must never end a session.
      pending = pending.then(() => w.write(bytes)).catch(() => {});
    },
    async close() {
      await pending;
      // As in send(): a logger(1) that is already gone has nothing left to flush.
      await writer?.close().catch(() => {});
      await child?.status.catch(() => {});
    },
  };
}
