/**
 * A reverse session's light path: while the DNAT service runs, the session
 * process asks it to decide the whole session (reverse/decide_protocol.ts)
 * and only does what it says: it reads the files the service asks for as
 * itself (its keyfile and known_hosts), then writes the lines to the client and execs ssh
 * or exits. It loads no config parser, logger or Node compatibility,
 * which is most of a session's start. When the service is not there (or
 * not root's, or decides with another config) the caller runs the session
 * the full way, as before.
 * @module
 */

import {
  DECIDE_ENV,
  decideLine,
  type DecideReply,
  type FileAnswer,
  MAX_DECIDE_LINE,
  MAX_READ_BYTES,
  MAX_READS,
  parseDecideReply,
  parseReadAsk,
  protocolLine,
  serviceSocketOf,
  thinArgs,
} from "../reverse/decide_protocol.ts";
import { REVERSE_NEEDS } from "../reverse/needs.ts";
import { replaceProcess } from "./exec.ts";
import { revokeExcept } from "./permissions.ts";
import { rootsSocket } from "./root_socket.ts";

/** config/spec.ts's defaults, held equal by a test (that module is too heavy to load here). */
export const THIN_DEFAULTS = {
  config: "/etc/xferproxy/aspera.conf",
  socket: "/run/xferproxy/dnat.sock",
} as const;

/** Deciding may probe each of a rule's hosts and wait for another session's port. */
const DECIDE_TIMEOUT_MS = 150_000;
/** A config larger than this is left to the full path (which says what is wrong with it). */
const MAX_CONFIG_BYTES = 4 << 20;

const encoder = new TextEncoder();

function tellClient(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch { /* the client is gone */ }
}

/**
 * Lines from the service, all within one time limit. The limit is an AbortSignal's, not a
 * setTimeout: the first setTimeout loads Deno's Node-compatible timers, ~20 ms of every start.
 */
export function lineReader(conn: Pick<Deno.Conn, "read">, timeoutMs: number) {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(65536);
  const limit = AbortSignal.timeout(timeoutMs);
  const late = new Promise<null>((resolve) =>
    limit.addEventListener("abort", () => resolve(null), { once: true })
  );
  let text = "";
  /** The next line; undefined at end of input, overflow or the time limit. */
  return async (): Promise<string | undefined> => {
    while (!text.includes("\n")) {
      if (text.length > MAX_DECIDE_LINE || limit.aborted) return undefined;
      const n = await Promise.race([conn.read(buffer), late]);
      if (n === null) return undefined;
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
    const newline = text.indexOf("\n");
    const line = text.slice(0, newline);
    text = text.slice(newline + 1);
    return line;
  };
}

/** Reads a file as this session's user, for the service (its keyfile, known_hosts). */
async function readForService(path: string): Promise<FileAnswer> {
  try {
    const info = await Deno.stat(path);
    // Never opened unless a regular file: a FIFO would hang the read.
    if (!info.isFile) return { op: "file", error: "other", message: "not a regular file" };
    if (info.size > MAX_READ_BYTES) return { op: "file", error: "other", message: "too large" };
    const text = new TextDecoder("utf-8", { fatal: true }).decode(await Deno.readFile(path));
    return { op: "file", text, uid: info.uid ?? -1, mode: info.mode ?? 0 };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { op: "file", error: "not_found", message: error.message };
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      return { op: "file", error: "denied", message: error.message };
    }
    return { op: "file", error: "other", message: String(error).slice(0, 512) };
  }
}

async function send(conn: Deno.UnixConn, line: string): Promise<void> {
  const bytes = encoder.encode(line);
  for (let sent = 0; sent < bytes.length;) sent += await conn.write(bytes.subarray(sent));
}

/**
 * The service's decision; undefined when it cannot decide (no service, not root's, another
 * config); "lost" when it took the request and gave no decision.
 */
async function askService(configPath: string): Promise<DecideReply | undefined | "lost"> {
  let configText: string;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(configPath);
    if (!info.isFile || info.size > MAX_CONFIG_BYTES || info.ino === null) return undefined;
    configText = await Deno.readTextFile(configPath);
  } catch {
    return undefined;
  }
  const socket = serviceSocketOf(configText) ?? THIN_DEFAULTS.socket;
  if (!rootsSocket(socket)) return undefined;
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
  } catch {
    return undefined;
  }
  try {
    const env: Record<string, string> = {};
    for (const name of DECIDE_ENV) {
      const value = Deno.env.get(name);
      if (value !== undefined) env[name] = value;
    }
    const request = decideLine({
      config: { dev: info.dev, ino: info.ino },
      pty: Deno.stdin.isTerminal(),
      env,
    });
    try {
      await send(conn, request);
    } catch {
      return undefined;
    }
    const next = lineReader(conn, DECIDE_TIMEOUT_MS);
    for (let reads = 0; reads <= MAX_READS; reads++) {
      const line = await next().catch(() => undefined);
      if (line === undefined) return "lost";
      const ask = parseReadAsk(line);
      if (!ask) return parseDecideReply(line) ?? "lost";
      try {
        await send(conn, protocolLine(await readForService(ask.path)));
      } catch {
        return "lost";
      }
    }
    return "lost";
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/**
 * Runs the session the light way when its arguments allow (exactly `reverse [--config PATH]`)
 * and the service decides it: returns the exit status, or never returns (the process is ssh
 * now). Undefined: the caller runs the session the full way.
 */
export async function runThinSession(args: readonly string[]): Promise<number | undefined> {
  const thin = thinArgs(args);
  if (!thin) return undefined;
  revokeExcept(REVERSE_NEEDS);
  const answer = await askService(thin.configPath ?? THIN_DEFAULTS.config);
  if (answer === "lost") {
    tellClient("xferproxy: the DNAT service did not answer; see the proxy log");
    return 255;
  }
  if (answer === undefined || answer.op === "fallback") return undefined;
  for (const line of answer.tell) tellClient(line);
  if (!answer.handoff) return answer.exit ?? 255;
  try {
    return replaceProcess(answer.handoff);
  } catch {
    tellClient(`xferproxy: internal error; cannot start ${answer.handoff.path}`);
    return 255;
  }
}
