/**
 * The contract between a caller and the privileged `xferproxy dnat` process
 * (as Teleport's re-exec config is shared by parent and child): the typed
 * request, the argv that carries it (built by `dnatArgv` beside its parser
 * `parseDnatArgs`), and the replies, a union discriminated by `event`.
 * Reverse sessions, the helper, the tests and the benchmark all go through
 * it. Values are typed (UUIDs, pids, IP literals, small indexes), never rule
 * text; anything else is refused before the helper touches netfilter.
 * @module
 */

import { parseArgs } from "node:util";
import { type IpAddress, parseIp } from "../net/ip.ts";
import { formatEndpoint, type IpEndpoint, parseIpEndpoint } from "../net/endpoint.ts";
import { type ConfigArg, UsageError } from "../cli/parse.ts";
import type { InstalledSession } from "./types.ts";

/** Where a session goes: host `host` (0-based) of rule `rule` (1-based), the server it logs in to. */
export interface Target {
  readonly rule: number;
  readonly host: number;
  readonly server: IpEndpoint;
}

/**
 * `dnat add`: a FASP session's forwarding through sudo, while the DNAT
 * service is down. Who the session is comes from the kernel (the process
 * that ran sudo and the sshd connection it descends from), never from here;
 * the session's id is issued by the call.
 */
export interface AddRequest extends Target {
  /** Root alone may name the owner and addresses itself (administration, tests). */
  readonly named?: {
    readonly owner: number;
    readonly client: IpAddress;
    readonly proxy: IpAddress;
  };
}

/** A request to the helper: one per action. */
export type DnatRequest =
  | { readonly action: "add"; readonly request: AddRequest }
  | { readonly action: "del"; readonly id: string }
  | { readonly action: "list"; readonly json: boolean }
  | { readonly action: "reap"; readonly all: boolean }
  | { readonly action: "serve" }
  | { readonly action: "drain"; readonly reason?: string }
  | { readonly action: "undrain" };

/** The actions, as `dnat --help` lists them. */
export const DNAT_ACTIONS = ["add", "del", "list", "reap", "serve", "drain", "undrain"] as const;
/** One of `DNAT_ACTIONS`. */
export type DnatAction = (typeof DNAT_ACTIONS)[number];

/** The longest `drain --reason` kept. */
export const MAX_DRAIN_REASON = 200;

/** The options of `dnat add`, in the order the session passes them. */
export const ADD_OPTIONS = ["rule", "host", "server"] as const;
/** The options only root may add: a named owner and addresses, all or none. */
export const NAMED_OPTIONS = ["owner", "client", "proxy"] as const;

/** The words after the executable for a request: `dnat <action> [options]`. */
export function dnatArgv(request: DnatRequest): string[] {
  switch (request.action) {
    case "add": {
      const r = request.request;
      const named = r.named
        ? [
          "--owner",
          String(r.named.owner),
          "--client",
          r.named.client.text,
          "--proxy",
          r.named.proxy.text,
        ]
        : [];
      return [
        "dnat",
        "add",
        "--rule",
        String(r.rule),
        "--host",
        String(r.host),
        "--server",
        formatEndpoint(r.server),
        ...named,
      ];
    }
    case "del":
      return ["dnat", "del", "--session", request.id];
    case "list":
      return ["dnat", "list", ...(request.json ? ["--json"] : [])];
    case "reap":
      return ["dnat", "reap", ...(request.all ? ["--all"] : [])];
    case "serve":
      return ["dnat", "serve"];
    case "drain":
      return [
        "dnat",
        "drain",
        ...(request.reason !== undefined ? ["--reason", request.reason] : []),
      ];
    case "undrain":
      return ["dnat", "undrain"];
  }
}

/** argv for `sudo -n <binary> dnat add …`, as a session runs it. */
export function sudoAddArgv(binary: string, target: Target): string[] {
  return ["-n", binary, ...dnatArgv({ action: "add", request: target })];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function refuse(message: string): never {
  throw new UsageError(message, "dnat");
}

function uuid(name: string, value: string | undefined): string {
  if (value === undefined) refuse(`--${name} is required`);
  if (!UUID.test(value)) {
    refuse(`--${name} must be a lower-case UUID, got ${JSON.stringify(value)}`);
  }
  return value;
}

function integer(name: string, value: string | undefined, min: number, max: number): number {
  if (value === undefined) refuse(`--${name} is required`);
  if (!/^\d{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
    refuse(`--${name} must be an integer ${min}-${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function ip(name: string, value: string | undefined) {
  if (value === undefined) refuse(`--${name} is required`);
  const parsed = parseIp(value);
  if (!parsed) refuse(`--${name} must be an IP address, got ${JSON.stringify(value)}`);
  return parsed;
}

function endpoint(name: string, value: string | undefined) {
  if (value === undefined) refuse(`--${name} is required`);
  const parsed = parseIpEndpoint(value, 22);
  if (typeof parsed === "string" || !/:\d+$/.test(value)) {
    refuse(`--${name} must be ip:port, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

/** `xferproxy dnat`'s arguments. */
export interface DnatArgs extends ConfigArg {
  readonly request: DnatRequest;
}

/**
 * Parses the words after `xferproxy dnat`: `dnatArgv`'s output without its first word.
 * @throws {UsageError}
 */
export function parseDnatArgs(args: readonly string[]): DnatRequest {
  const [action, ...rest] = args;
  const options = {
    ...Object.fromEntries(
      [...ADD_OPTIONS, ...NAMED_OPTIONS, "session", "reason"].map((o) => [o, { type: "string" }]),
    ),
    json: { type: "boolean" },
    all: { type: "boolean" },
  } as Record<string, { type: "string" | "boolean" }>;
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: rest, options, strict: true, allowPositionals: false }));
  } catch (error) {
    refuse(`bad arguments for dnat ${action ?? ""}: ${(error as Error).message.split(".")[0]}`);
  }
  const str = (k: string) => values[k] as string | undefined;
  const allowed = (keys: readonly string[]) => {
    const extra = Object.keys(values).filter((k) => !keys.includes(k));
    if (extra.length) refuse(`dnat ${action} does not take --${extra[0]}`);
  };
  switch (action) {
    case "add": {
      allowed([...ADD_OPTIONS, ...NAMED_OPTIONS]);
      const target = {
        rule: integer("rule", str("rule"), 1, 10000),
        host: integer("host", str("host"), 0, 1000),
        server: endpoint("server", str("server")),
      };
      const given = NAMED_OPTIONS.filter((o) => values[o] !== undefined);
      if (given.length === 0) return { action, request: target };
      if (given.length !== NAMED_OPTIONS.length) {
        refuse(`dnat add takes --owner, --client and --proxy together or not at all`);
      }
      return {
        action,
        request: {
          ...target,
          named: {
            owner: integer("owner", str("owner"), 1, 4194304),
            client: ip("client", str("client")),
            proxy: ip("proxy", str("proxy")),
          },
        },
      };
    }
    case "del":
      allowed(["session"]);
      return { action, id: uuid("session", str("session")) };
    case "list":
      allowed(["json"]);
      return { action, json: values.json === true };
    case "reap":
      allowed(["all"]);
      return { action, all: values.all === true };
    case "serve":
    case "undrain":
      allowed([]);
      return { action };
    case "drain": {
      allowed(["reason"]);
      const reason = str("reason");
      if (reason === undefined) return { action };
      // It is logged and shown by /healthz: plain printable text only.
      if (reason.length > MAX_DRAIN_REASON || !/^[\x20-\x7e]*$/.test(reason)) {
        refuse(`--reason must be printable ASCII of at most ${MAX_DRAIN_REASON} characters`);
      }
      return { action, reason };
    }
    default:
      refuse(
        action === undefined
          ? `dnat needs an action: ${DNAT_ACTIONS.join(", ")}`
          : `unknown dnat action ${JSON.stringify(action)}; expected ${DNAT_ACTIONS.join(", ")}`,
      );
  }
}

/** `dnat add`'s answer, one JSON line on stdout whatever the outcome. */
export type AddReply =
  | {
    readonly event: "installed";
    /** The session's id, issued by the call. */
    readonly session: string;
    /** `ip:port` or `ip:low-high` the proxy receives on. */
    readonly proxy: string;
    /** `ip:port` or `ip:low-high` it forwards to. */
    readonly server: string;
    /** The client's source port will be learned and the rule narrowed to it. */
    readonly filtering: boolean;
  }
  /** The config or the caller's identity does not allow it (nothing changed). */
  | { readonly event: "refused"; readonly reason: string }
  /** Allowed, but it could not be installed (nothing left behind). */
  | { readonly event: "failed"; readonly reason: string };

/** The reply as the helper prints it. */
export function formatAddReply(reply: AddReply): string {
  return JSON.stringify(reply) + "\n";
}

/** Parses the last line of the helper's stdout; undefined when it is no reply (sudo said no). */
export function parseAddReply(text: string): AddReply | undefined {
  try {
    return toAddReply(JSON.parse(text.trim().split("\n").at(-1) ?? ""));
  } catch {
    return undefined;
  }
}

/** A parsed JSON value as an `AddReply`; undefined when it is none. */
export function toAddReply(value: unknown): AddReply | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  switch (v.event) {
    case "installed":
      if (
        typeof v.session !== "string" || !UUID.test(v.session) || typeof v.proxy !== "string" ||
        typeof v.server !== "string" || typeof v.filtering !== "boolean"
      ) return undefined;
      return {
        event: v.event,
        session: v.session,
        proxy: v.proxy,
        server: v.server,
        filtering: v.filtering,
      };
    case "refused":
    case "failed":
      return typeof v.reason === "string" ? { event: v.event, reason: v.reason } : undefined;
    default:
      return undefined;
  }
}

/** True for a session id as the service and the privileged call issue them. */
export function isSessionId(value: unknown): value is string {
  return typeof value === "string" && UUID.test(value);
}

/** One session of `dnat list --json` (which prints an array of them). */
export interface Listed extends InstalledSession {
  readonly alive: boolean;
  /** Recorded in the registry (false: only the kernel holds it, an orphan). */
  readonly registered: boolean;
  readonly uid?: number;
  /** The reverse rule; 0 for a forward session (the forward daemon's). */
  readonly rule?: number;
  /** Its removal failed and is being retried (ms since the epoch of the first failure). */
  readonly removing?: number;
}

/**
 * The uid of the user who ran this command through sudo, when it did.
 * SUDO_UID alone also lingers in a root shell opened with `sudo -i`; sudo
 * sets SUDO_COMMAND to what it ran, which is this command only when sudo ran
 * it directly. (The environment is sudo's, not the caller's: sudo overrides
 * every SUDO_* variable, and root may set anything but is trusted anyway.)
 */
export function sudoCallerUid(env: (name: string) => string | undefined): number | undefined {
  const uid = env("SUDO_UID");
  if (uid === undefined || !/^\d+$/.test(uid) || uid === "0") return undefined;
  return /^\/\S*xferproxy dnat( |$)/.test(env("SUDO_COMMAND") ?? "") ? Number(uid) : undefined;
}
