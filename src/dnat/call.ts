/**
 * The contract between a reverse session and the privileged `dnat add` it
 * runs through sudo: the request, the argv that carries it, and the one JSON
 * line that answers it. The session builds the argv here; `args.ts` parses
 * the same option names on the other side.
 * @module
 */

import type { IpAddress } from "../net/ip.ts";
import type { IpEndpoint } from "../net/endpoint.ts";
import { formatEndpoint } from "../net/endpoint.ts";

/** What a session asks for. Every value is typed: the helper never takes rule text. */
export interface AddRequest {
  readonly id: string;
  /** The session process (its pid survives the exec into ssh). */
  readonly owner: number;
  readonly client: IpAddress;
  readonly proxy: IpAddress;
  /** 1-based, as in logs. */
  readonly rule: number;
  /** 0-based position in the rule's host list. */
  readonly host: number;
  /** The server the session is about to log in to: must be rule `rule`'s host `host`. */
  readonly server: IpEndpoint;
}

/** The options of `dnat add`, in the order the session passes them. */
export const ADD_OPTIONS = [
  "session",
  "owner",
  "client",
  "proxy",
  "rule",
  "host",
  "server",
] as const;

/** argv for `sudo -n <binary> dnat add …`. */
export function addCommand(binary: string, request: AddRequest): string[] {
  const values: Record<(typeof ADD_OPTIONS)[number], string> = {
    session: request.id,
    owner: String(request.owner),
    client: request.client.text,
    proxy: request.proxy.text,
    rule: String(request.rule),
    host: String(request.host),
    server: formatEndpoint(request.server),
  };
  return ["-n", binary, "dnat", "add", ...ADD_OPTIONS.flatMap((o) => [`--${o}`, values[o]])];
}

/** What `dnat add` prints on success, one JSON line. */
export interface AddReply {
  readonly event: "installed";
  /** `ip:port` or `ip:low-high` the proxy receives on. */
  readonly proxy: string;
  /** `ip:port` or `ip:low-high` it forwards to. */
  readonly server: string;
  /** The client's source port will be learned and the rule narrowed to it. */
  readonly filtering: boolean;
}

/** Parses the reply line; undefined when it is not one. */
export function parseAddReply(text: string): AddReply | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text.trim().split("\n").at(-1) ?? "");
  } catch {
    return undefined;
  }
  const v = value as Partial<AddReply> | null;
  if (
    v?.event !== "installed" || typeof v.proxy !== "string" || typeof v.server !== "string" ||
    typeof v.filtering !== "boolean"
  ) return undefined;
  return { event: v.event, proxy: v.proxy, server: v.server, filtering: v.filtering };
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
