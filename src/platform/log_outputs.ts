/**
 * The real log outputs: an append-only file, syslog through one long-lived
 * `logger(1)` process, and stderr. Daemons reopen their file on SIGHUP
 * (`reopenLogFiles`), after logrotate has moved it.
 * @module
 */

import { chooseOutputs, type LogOutputs } from "../log/mod.ts";
import { type AppendHandle, openSharedAppend } from "./shared_files.ts";

const encoder = new TextEncoder();

/** Where the real outputs should go. */
export interface RealOutputOptions {
  /** `<log_directory>`; when set, lines go to `<dir>/xferproxy.log` instead of syslog. */
  directory?: string;
  /** A daemon: also write to stderr (never in reverse mode). */
  stderr?: boolean;
  /** Started by systemd: a daemon's stderr is the journal, so it logs once (log/mod.ts). */
  systemd?: boolean;
  /** syslog socket, for tests; default /dev/log. */
  syslogSocket?: string;
}

/** The log files open in this process, for `reopenLogFiles`. */
const openFiles = new Set<{ reopen(): boolean }>();

/**
 * Reopens every log file this process writes (SIGHUP, after logrotate moved them); returns
 * how many were reopened. One that cannot be reopened keeps its old descriptor.
 */
export function reopenLogFiles(): number {
  let reopened = 0;
  for (const file of openFiles) if (file.reopen()) reopened++;
  return reopened;
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
  const path = options.directory ? `${options.directory}/xferproxy.log` : undefined;
  let file = path ? openLogFile(path) : undefined;
  const choice = chooseOutputs({
    directory: path !== undefined,
    stderr: options.stderr ?? false,
    systemd: options.systemd ?? false,
    fileFailed: path !== undefined && file === undefined,
  });
  if (choice.file && file && path) {
    // One write per line with O_APPEND: lines of concurrent sessions never interleave.
    outputs.appendFile = (line) => {
      try {
        file?.write(line + "\n");
      } catch { /* disk full or file removed: logging must never end a session */ }
    };
    const entry = {
      reopen: () => {
        const fresh = openLogFile(path);
        if (!fresh) return false;
        const old = file;
        file = fresh;
        old?.close();
        return true;
      },
    };
    openFiles.add(entry);
    closers.push(() => {
      openFiles.delete(entry);
      file?.close();
    });
  }
  if (choice.syslog) {
    // No log directory, or its file cannot be opened: syslog rather than nothing.
    const syslog = spawnLogger(options.syslogSocket);
    outputs.syslog = syslog.send;
    closers.push(syslog.close);
  }
  if (choice.stderr) outputs.stderr = (line) => Deno.stderr.writeSync(encoder.encode(line + "\n"));
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
