/**
 * The contract between a reverse session and the DNAT service over the
 * service's local socket: one JSON line per request and per reply, on one
 * connection per session. Who the session is, the service reads from the
 * kernel (the socket's peer); the requests say only where it goes and what
 * it asks. Both sides parse through here.
 * @module
 */

import { formatEndpoint, type IpEndpoint, parseIpEndpoint } from "../net/endpoint.ts";
import { type AddReply, isSessionId, toAddReply } from "./contract.ts";
import {
  type DecideRequest,
  MAX_DECIDE_LINE,
  parseDecideRequest,
} from "../reverse/decide_protocol.ts";

/** The longest line either side sends or accepts: a decision carries the client's command. */
export const MAX_LINE = MAX_DECIDE_LINE;

/**
 * What a session asks, in order: hello, then picks and failures, then register once. Or, as its
 * one request, `decide` (reverse/decide_protocol.ts): the service makes the whole decision.
 */
export type ServiceRequest =
  | DecideRequest
  /** Identifies the peer and issues the session's id. */
  | { readonly op: "hello" }
  /** The order to try rule `rule`'s hosts in (round robin, faulty ones left out). */
  | { readonly op: "pick"; readonly rule: number }
  /** Host `host` of rule `rule` did not answer: the service checks and marks it faulty. */
  | { readonly op: "failed"; readonly rule: number; readonly host: number; readonly reason: string }
  /** The session hands over to ssh for this host; `udp`: it runs a FASP command. */
  | {
    readonly op: "register";
    readonly rule: number;
    readonly host: number;
    readonly server: IpEndpoint;
    readonly udp: boolean;
    /** The proxy user as the session knows itself, for the closing line. */
    readonly user: string;
  };

/** The service's answers. */
export type ServiceReply =
  /** `draining`: the node takes no new sessions; the session ends with one line to its client. */
  | { readonly op: "hello"; readonly session: string; readonly draining?: true }
  | {
    readonly op: "pick";
    readonly order: readonly number[];
    readonly skipped: readonly { readonly index: number; readonly until: number }[];
  }
  | { readonly op: "noted" }
  /** Registered without forwarding (the closing line will come). */
  | { readonly event: "registered"; readonly session: string }
  | AddReply;

/** One line on the wire. */
export function encodeLine(message: ServiceRequest | ServiceReply): string {
  const value = "server" in message && typeof message.server !== "string"
    ? { ...message, server: formatEndpoint(message.server) }
    : message;
  return JSON.stringify(value) + "\n";
}

function parseObject(line: string): Record<string, unknown> | undefined {
  if (line.length > MAX_LINE) return undefined;
  try {
    const value = JSON.parse(line);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

const isIndex = (v: unknown, min: number, max: number): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;

/** The service's side: a request, or undefined for anything else. */
export function parseRequest(line: string): ServiceRequest | undefined {
  const v = parseObject(line);
  switch (v?.op) {
    case "hello":
      return { op: "hello" };
    case "decide":
      return parseDecideRequest(v);
    case "pick":
      return isIndex(v.rule, 1, 10000) ? { op: "pick", rule: v.rule } : undefined;
    case "failed":
      return isIndex(v.rule, 1, 10000) && isIndex(v.host, 0, 1000) &&
          typeof v.reason === "string" && v.reason.length <= 512
        ? { op: "failed", rule: v.rule, host: v.host, reason: v.reason }
        : undefined;
    case "register": {
      const server = typeof v.server === "string" ? parseIpEndpoint(v.server, 22) : "";
      if (
        !isIndex(v.rule, 1, 10000) || !isIndex(v.host, 0, 1000) || typeof server === "string" ||
        typeof v.udp !== "boolean" || typeof v.user !== "string" || v.user.length > 256
      ) return undefined;
      return { op: "register", rule: v.rule, host: v.host, server, udp: v.udp, user: v.user };
    }
    default:
      return undefined;
  }
}

/** The session's side: a reply, or undefined for anything else. */
export function parseReply(line: string): ServiceReply | undefined {
  const v = parseObject(line);
  if (!v) return undefined;
  if (v.op === "hello") {
    if (!isSessionId(v.session)) return undefined;
    return v.draining === true
      ? { op: "hello", session: v.session, draining: true }
      : { op: "hello", session: v.session };
  }
  if (v.op === "pick") {
    const order = Array.isArray(v.order) && v.order.every((i) => isIndex(i, 0, 1000))
      ? v.order as number[]
      : undefined;
    const skipped = Array.isArray(v.skipped) &&
        v.skipped.every((s) =>
          typeof s === "object" && s !== null && isIndex(s.index, 0, 1000) &&
          isIndex(s.until, 0, Number.MAX_SAFE_INTEGER)
        )
      ? (v.skipped as { index: number; until: number }[]).map((s) => ({
        index: s.index,
        until: s.until,
      }))
      : undefined;
    return order && skipped ? { op: "pick", order, skipped } : undefined;
  }
  if (v.op === "noted") return { op: "noted" };
  if (v.event === "registered") {
    return isSessionId(v.session) ? { event: "registered", session: v.session } : undefined;
  }
  return toAddReply(v);
}
