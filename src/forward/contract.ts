/**
 * The forward proxy's HTTP API as both sides see it: what `forward connect`
 * (or any client) sends, what the daemon answers, and how each side reads
 * the other's JSON. docs/forward-api.md describes the same.
 * @module
 */

import { isHostName, parsePort } from "../net/endpoint.ts";
import { parseIp } from "../net/ip.ts";

/** Where sessions are made, listed and ended. */
export const SESSIONS_PATH = "/v1/sessions";

/** `POST /v1/sessions`: the destination and its ports (22 and 33001 when left out). */
export interface SessionRequest {
  readonly destination: string;
  readonly ssh_port?: number;
  readonly udp_port?: number;
}

/** A session request as the daemon takes it. */
export interface CheckedRequest {
  /** An IP literal or a host name, lower case. */
  readonly destination: string;
  readonly sshPort: number;
  readonly udpPort: number;
}

/** Reads a request body; a string says what is wrong with it (the 400's message). */
export function parseSessionRequest(text: string): CheckedRequest | string {
  let body: { destination?: unknown; ssh_port?: unknown; udp_port?: unknown } | null;
  try {
    body = JSON.parse(text);
  } catch {
    return "request body must be JSON: {destination, ssh_port, udp_port}";
  }
  const destination = typeof body?.destination === "string"
    ? body.destination.trim().toLowerCase()
    : "";
  const sshPort = parsePort(String(body?.ssh_port ?? 22));
  const udpPort = parsePort(String(body?.udp_port ?? 33001));
  if (!destination || (!parseIp(destination) && !isHostName(destination))) {
    return "destination must be an IP address or a host name";
  }
  if (sshPort === undefined || udpPort === undefined) {
    return "ssh_port and udp_port must be integers 1-65535";
  }
  return { destination, sshPort, udpPort };
}

/** A session as the daemon shows it (201 on creation, and every GET). */
export interface SessionView {
  readonly id: string;
  readonly user: string;
  readonly client: string;
  /** As requested: an IP literal or a host name. */
  readonly destination: string;
  /** The address it resolved to, once, at creation. */
  readonly address: string;
  readonly ssh_port: number;
  readonly udp_port: number;
  /** Where to connect: the proxy's address toward the client. */
  readonly proxy_host: string;
  /** The allocated proxy port, TCP and UDP. */
  readonly port: number;
  /** Seconds between keepalives the client should send. */
  readonly keepalive_interval: number;
  readonly expires_at: string;
}

const VIEW_STRINGS = [
  "id",
  "user",
  "client",
  "destination",
  "address",
  "proxy_host",
  "expires_at",
] as const satisfies ReadonlyArray<keyof SessionView>;
const VIEW_NUMBERS = [
  "ssh_port",
  "udp_port",
  "port",
  "keepalive_interval",
] as const satisfies ReadonlyArray<keyof SessionView>;

/** Reads a session the daemon sent; undefined when it is not one. */
export function parseSessionView(text: string): SessionView | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const ok = VIEW_STRINGS.every((key) => typeof v[key] === "string") &&
    VIEW_NUMBERS.every((key) => typeof v[key] === "number");
  return ok ? v as unknown as SessionView : undefined;
}

/** Every error answer's body. */
export interface ErrorBody {
  readonly error: string;
}

/** The reason in an error answer, or its text when it is not one. */
export function errorReason(text: string): string {
  try {
    const reason = (JSON.parse(text) as Partial<ErrorBody> | null)?.error;
    if (typeof reason === "string") return reason;
  } catch { /* not JSON: the text itself is the reason */ }
  return text.trim();
}
