/**
 * `ip[:port]`, `[ipv6]:port` and `name[:port]` parsing, plus port checks.
 * @module
 */

import { type IpAddress, parseIp } from "./ip.ts";

/** An IP address with a port. */
export interface IpEndpoint {
  readonly ip: IpAddress;
  readonly port: number;
}

/** A DNS name with an optional port, as in `host_domain="files.example.com:33001"`. */
export interface DomainEndpoint {
  readonly name: string;
  readonly port?: number;
}

/** Parses a decimal port 1-65535 (0 too when `allowZero`); undefined otherwise. */
export function parsePort(text: string, allowZero = false): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  if (port > 65535 || (port === 0 && !allowZero)) return undefined;
  return port;
}

/**
 * Parses `ip`, `ip:port`, `[ipv6]:port` or a bare IPv6 literal.
 * Returns an error message instead of throwing, so callers can add their own context.
 */
export function parseIpEndpoint(text: string, defaultPort: number): IpEndpoint | string {
  let host = text;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1] ?? "";
    portText = bracketed[2];
  } else if ((text.match(/:/g) ?? []).length === 1) {
    [host = "", portText] = text.split(":");
  }
  const ip = parseIp(host);
  if (!ip) return `must be an IP address with an optional port (ip[:port]), got "${text}"`;
  if (bracketed && ip.family === 4) return `brackets are only for IPv6 addresses, got "${text}"`;
  if (portText === undefined) return { ip, port: defaultPort };
  const port = parsePort(portText);
  if (port === undefined) return `port must be an integer 1-65535, got "${portText}" in "${text}"`;
  return { ip, port };
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** True for a DNS host name (RFC 1123 labels, at most 253 characters, no trailing dot). */
export function isHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.toLowerCase().split(".").every((label) => LABEL.test(label));
}

/** Parses `name` or `name:port`; names are lower-cased. */
export function parseDomainEndpoint(text: string): DomainEndpoint | string {
  const [name = "", portText, extra] = text.split(":");
  if (extra !== undefined || !isHostName(name)) {
    return `must be a host name with an optional port (name[:port]), got "${text}"`;
  }
  if (portText === undefined) return { name: name.toLowerCase() };
  const port = parsePort(portText);
  if (port === undefined) return `port must be an integer 1-65535, got "${portText}" in "${text}"`;
  return { name: name.toLowerCase(), port };
}

/** Formats an endpoint as `ip:port`, bracketing IPv6. */
export function formatEndpoint(ep: IpEndpoint): string {
  return ep.ip.family === 6 ? `[${ep.ip.text}]:${ep.port}` : `${ep.ip.text}:${ep.port}`;
}
