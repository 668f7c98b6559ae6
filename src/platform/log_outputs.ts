/**
 * The real log outputs: an append-only file, syslog through one long-lived
 * `logger(1)` process, and stderr. Root writes its own file in the log
 * directory, everyone else the shared one (log/files.ts). Daemons reopen
 * their file on SIGHUP (`reopenLogFiles`), after logrotate has moved it.
 * @module
 */

import { type LossEvent, lossLine, lossTracker } from "../log/loss.ts";
import { chooseOutputs, type LogOutputs } from "../log/mod.ts";
import { type LogFileChoice, logFileFor, ROOT_LOG_MODE } from "../log/files.ts";
import { errorText } from "../errors.ts";
import {
  type AppendHandle,
  NotRegularFileError,
  openRootAppend,
  openSharedAppend,
} from "./shared_files.ts";

const encoder = new TextEncoder();

/** Where the real outputs should go. */
export interface RealOutputOptions {
  /**
   * `<log_directory>`; when set, lines go to a file in it instead of syslog: root's own
   * `root/xferproxy.log` for root, the shared `xferproxy.log` for everyone else.
   */
  directory?: string;
  /** Whose lines these are; default this process's uid. */
  uid?: number;
  /** A daemon: also write to stderr (never in reverse mode). */
  stderr?: boolean;
  /** Started by systemd: a daemon's stderr is the journal, so it logs once (log/mod.ts). */
  systemd?: boolean;
  /** syslog socket, for tests; default /dev/log. */
  syslogSocket?: string;
}

/** Lines this process could not write to its log files (the DNAT service's metrics). */
let linesLost = 0;

/** How many log lines this process could not write to a file. */
export function logLinesLost(): number {
  return linesLost;
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

/** This process's uid; -1 (not root) in a mode that may not ask (its needs hold no `sys`). */
function ownUid(): number {
  try {
    return Deno.uid() ?? -1;
  } catch {
    return -1;
  }
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
  const target = options.directory
    ? logFileFor(options.directory, options.uid ?? ownUid())
    : undefined;
  const first = target ? openLogFile(target) : undefined;
  let file = first?.handle;
  const choice = chooseOutputs({
    directory: target !== undefined,
    stderr: options.stderr ?? false,
    systemd: options.systemd ?? false,
    fileFailed: target !== undefined && file === undefined,
  });
  if (target && first?.problem) {
    outputs.refusedFile = {
      path: target.path,
      reason: first.problem,
      instead: choice.syslog ? "syslog" : "stderr",
    };
  }
  if (choice.file && file && target) {
    // One write per line with O_APPEND: lines of concurrent sessions never interleave.
    // Disk full or file removed: logging must never end a session, but the loss is counted and
    // its start and end go to syslog.
    const loss = lossTracker();
    // A failed write may have left part of its line (the disk filled midway; the runtime's write
    // does not say how much went in): the next line starts on its own, after at worst an empty one.
    let fragment = false;
    let lossSyslog: ReturnType<typeof spawnLogger> | undefined;
    outputs.appendFile = (line) => {
      let event: LossEvent | undefined;
      try {
        file?.write(`${fragment ? "\n" : ""}${line}\n`);
        fragment = false;
        event = loss.written();
      } catch (error) {
        linesLost++;
        fragment = true;
        event = loss.failed(errorText(error));
      }
      if (event) {
        const { severity, line: said } = lossLine(target.path, event);
        // One logger(1) for these, started at the first: the start and the end arrive in order.
        lossSyslog ??= spawnLogger(options.syslogSocket);
        lossSyslog.send(severity, said);
      }
    };
    closers.push(() => lossSyslog?.close());
    const entry = {
      reopen: () => {
        const fresh = openLogFile(target).handle;
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
 * Opens the log file for appending. Sessions of different users share theirs
 * through the log directory's group, so it is created group-writable; root's
 * is root's alone (shared_files.ts). Anything planted in their place (a
 * symlink, a FIFO, a hard link, a file of someone else's where root's should
 * be) is refused without blocking, and the caller falls back to syslog. The
 * problem says why.
 */
function openLogFile(target: LogFileChoice): { handle?: AppendHandle; problem?: string } {
  try {
    return {
      handle: target.root
        ? openRootAppend(target.path, ROOT_LOG_MODE)
        : openSharedAppend(target.path),
    };
  } catch (error) {
    // The file's own problem without its path, which the warning names already.
    return { problem: error instanceof NotRegularFileError ? error.why : errorText(error) };
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
