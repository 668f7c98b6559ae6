/**
 * A reverse session decided by the DNAT service: the session process sends
 * what sshd gave it (the few environment variables a decision reads, and
 * whether it has a pty) and which config file it was told to use; the
 * service decides with its own config, registers, logs, and answers with
 * the exec to make or the status to exit with, and the lines to tell the
 * client. Who the session is, the service reads from the kernel. Meanwhile
 * the service asks the session to read files as itself (its keyfile, in a
 * home the service's unit may not read, and known_hosts), so the checks are
 * the session's own. JSON lines. Pure, and light: the session process loads
 * nothing else before it execs.
 * @module
 */

import type { Handoff } from "../ssh/handoff.ts";

/** The environment variables a decision reads; nothing else of the session's is sent. */
export const DECIDE_ENV = [
  "USER",
  "LOGNAME",
  "HOME",
  "TERM",
  "SSH_ORIGINAL_COMMAND",
  "XFERPROXY_HOST",
] as const;

/** One of `DECIDE_ENV`. */
export type DecideEnvName = typeof DECIDE_ENV[number];

/** The longest value of one variable (a long rsync command line fits many times over). */
export const MAX_ENV_VALUE = 16384;

/** The config file a session was told to use, as the kernel names it. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** The session's one request. */
export interface DecideRequest {
  readonly op: "decide";
  /** The service decides only when this is its own config file; otherwise the session does. */
  readonly config: FileIdentity;
  readonly pty: boolean;
  readonly env: Readonly<Partial<Record<DecideEnvName, string>>>;
}

/** The service's answer. */
export type DecideReply =
  /** Tell the client `tell`, then exec `handoff` or exit with `exit`. */
  | {
    readonly op: "decided";
    readonly tell: readonly string[];
    readonly handoff?: Handoff;
    readonly exit?: number;
  }
  /** The service cannot decide this session (another config): the session decides itself. */
  | { readonly op: "fallback"; readonly reason: string };

/** The service asks the session to read a file as itself. */
export interface ReadAsk {
  readonly op: "read";
  readonly path: string;
}

/** The session's answer to a read: the file's text, owner and mode, or why it could not. */
export type FileAnswer =
  | { readonly op: "file"; readonly text: string; readonly uid: number; readonly mode: number }
  | {
    readonly op: "file";
    readonly error: "not_found" | "denied" | "other";
    readonly message: string;
  };

/**
 * The largest file a session reads for the service: a private key is a few KiB, a known_hosts
 * of some 900 servers fits; the answer must fit a line (`MAX_DECIDE_LINE`).
 */
export const MAX_READ_BYTES = 96 * 1024;
/** Reads a session may be asked for in one decision (its keyfile; a bound, not a budget). */
export const MAX_READS = 4;

const isCount = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

const isText = (v: unknown, max: number): v is string =>
  typeof v === "string" && v.length <= max && !v.includes("\0");

const isTextList = (v: unknown, max: number): v is string[] =>
  Array.isArray(v) && v.length <= 64 && v.every((s) => isText(s, max));

/** The service's side: the request's fields, or undefined when any is malformed. */
export function parseDecideRequest(v: Record<string, unknown>): DecideRequest | undefined {
  const config = v.config as Record<string, unknown> | null;
  if (
    typeof config !== "object" || config === null || !isCount(config.dev) ||
    !isCount(config.ino) || typeof v.pty !== "boolean" || typeof v.env !== "object" ||
    v.env === null || Array.isArray(v.env)
  ) return undefined;
  const env: Partial<Record<DecideEnvName, string>> = {};
  for (const [name, value] of Object.entries(v.env)) {
    if (!(DECIDE_ENV as readonly string[]).includes(name) || !isText(value, MAX_ENV_VALUE)) {
      return undefined;
    }
    env[name as DecideEnvName] = value;
  }
  return { op: "decide", config: { dev: config.dev, ino: config.ino }, pty: v.pty, env };
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(line);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The session's side: a read the service asks for, or undefined for anything else. */
export function parseReadAsk(line: string): ReadAsk | undefined {
  const v = parseLine(line);
  return v?.op === "read" && isText(v.path, 4096) && v.path.startsWith("/")
    ? { op: "read", path: v.path }
    : undefined;
}

/** The service's side: the session's answer to a read, or undefined for anything else. */
export function parseFileAnswer(line: string): FileAnswer | undefined {
  const v = parseLine(line);
  if (v?.op !== "file") return undefined;
  if (typeof v.text === "string") {
    return v.text.length <= MAX_READ_BYTES && isCount(v.uid) && isCount(v.mode)
      ? { op: "file", text: v.text, uid: v.uid, mode: v.mode }
      : undefined;
  }
  return (v.error === "not_found" || v.error === "denied" || v.error === "other") &&
      isText(v.message, 1024)
    ? { op: "file", error: v.error, message: v.message }
    : undefined;
}

/** One line of the conversation, either way. */
export function protocolLine(message: ReadAsk | FileAnswer | DecideReply): string {
  return JSON.stringify(message) + "\n";
}

/** The session's side: the reply, or undefined for anything else. */
export function parseDecideReply(line: string): DecideReply | undefined {
  const v = parseLine(line);
  if (!v) return undefined;
  if (v.op === "fallback") {
    return isText(v.reason, 1024) ? { op: "fallback", reason: v.reason } : undefined;
  }
  if (v.op !== "decided" || !isTextList(v.tell, 1024)) return undefined;
  if (v.exit !== undefined) {
    return isCount(v.exit) && v.exit <= 255 && v.handoff === undefined
      ? { op: "decided", tell: v.tell, exit: v.exit }
      : undefined;
  }
  const h = v.handoff as Record<string, unknown> | null;
  if (
    typeof h !== "object" || h === null || !isText(h.path, 4096) || !h.path.startsWith("/") ||
    !Array.isArray(h.argv) || h.argv.length === 0 || h.argv.length > 256 ||
    !h.argv.every((a) => isText(a, 4 * MAX_ENV_VALUE)) || !isTextList(h.env, MAX_ENV_VALUE)
  ) return undefined;
  return {
    op: "decided",
    tell: v.tell,
    handoff: { path: h.path, argv: h.argv as string[], env: h.env as string[] },
  };
}

/** The session's request line. */
export function decideLine(request: Omit<DecideRequest, "op">): string {
  return JSON.stringify({ op: "decide", ...request }) + "\n";
}

/** The service's reply line. */
export function decideReplyLine(reply: DecideReply): string {
  return protocolLine(reply);
}

/** The longest line either side of a decision sends: the command line may be long. */
export const MAX_DECIDE_LINE = 8 * MAX_ENV_VALUE;

/**
 * What a session was started with, when it can ask the service (exactly `reverse`, with or
 * without `--config PATH`); undefined for anything else (help, a typo), which the full command
 * line parser answers.
 */
export function thinArgs(args: readonly string[]): { configPath?: string } | undefined {
  if (args[0] !== "reverse") return undefined;
  const rest = args.slice(1);
  if (rest.length === 0) return {};
  if (rest.length === 2 && rest[0] === "--config" && rest[1]) return { configPath: rest[1] };
  if (rest.length === 1 && rest[0]!.startsWith("--config=") && rest[0]!.length > 9) {
    return { configPath: rest[0]!.slice(9) };
  }
  return undefined;
}

/**
 * `<service_socket>` of a config text, or undefined when it sets none. Comments are dropped
 * first; the service's own config decides, so a wrong guess only means the session decides
 * itself.
 */
export function serviceSocketOf(configText: string): string | undefined {
  const text = configText.replace(/<!--[\s\S]*?-->/g, "");
  const match = /<service_socket>\s*([^<\s]+)\s*<\/service_socket>/.exec(text);
  return match?.[1];
}
