/**
 * Parsers for option values. Each returns the value, or a message that
 * completes the sentence "<tag> ..." (e.g. `must be true or false, got "yes"`).
 * @module
 */

import { type Cidr, type IpAddress, parseCidr, parseIp } from "../net/ip.ts";
import {
  type DomainEndpoint,
  type IpEndpoint,
  parseDomainEndpoint,
  parseIpEndpoint,
  parsePort,
} from "../net/endpoint.ts";
import type { CommandPattern } from "./types.ts";
import { BACKEND_NAMES, type BackendName, isBackendName } from "../dnat/backends.ts";

/** A parsed value, or why the text is not one. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** Turns text into a typed value. */
export type ValueParser<T> = (text: string) => Parsed<T>;

function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}
function fail<T>(message: string): Parsed<T> {
  return { ok: false, message };
}

/** `true` or `false`, nothing else. */
export const parseBoolean: ValueParser<boolean> = (text) =>
  text === "true" || text === "false"
    ? ok(text === "true")
    : fail(`must be true or false, got "${text}"`);

/** A TCP/UDP port 1-65535. */
export const parsePortValue: ValueParser<number> = (text) => {
  const port = parsePort(text);
  return port === undefined ? fail(`must be an integer 1-65535, got "${text}"`) : ok(port);
};

/** A port 0-65535, where 0 has a documented meaning. */
export const parsePortOrZero: ValueParser<number> = (text) => {
  const port = parsePort(text, true);
  return port === undefined ? fail(`must be an integer 0-65535, got "${text}"`) : ok(port);
};

/** A count of consecutive ports, 1-1000. */
export const parsePortCount: ValueParser<number> = (text) =>
  /^\d{1,4}$/.test(text) && Number(text) >= 1 && Number(text) <= 1000
    ? ok(Number(text))
    : fail(`must be a whole number 1-1000, got "${text}"`);

/** A session cap, 1-65535. */
export const parseSessionCap: ValueParser<number> = (text) =>
  /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535
    ? ok(Number(text))
    : fail(`must be a whole number 1-65535, got "${text}"`);

/** A whole number of seconds, 0-86400. */
export const parseSeconds: ValueParser<number> = (text) =>
  /^\d{1,5}$/.test(text) && Number(text) <= 86400
    ? ok(Number(text))
    : fail(`must be a whole number of seconds 0-86400, got "${text}"`);

/** A connection timeout in seconds, 1-300. */
export const parseTimeout: ValueParser<number> = (text) =>
  /^\d{1,3}$/.test(text) && Number(text) >= 1 && Number(text) <= 300
    ? ok(Number(text))
    : fail(`must be a whole number of seconds 1-300, got "${text}"`);

/** `0`, `1` or `2`. */
export const parseLogLevel: ValueParser<0 | 1 | 2> = (text) =>
  text === "0" || text === "1" || text === "2"
    ? ok(Number(text) as 0 | 1 | 2)
    : fail(`must be 0, 1 or 2, got "${text}"`);

/** An IPv4 or IPv6 literal. */
export const parseIpValue: ValueParser<IpAddress> = (text) => {
  const ip = parseIp(text);
  return ip ? ok(ip) : fail(`must be an IP address, got "${text}"`);
};

/** A dotted netmask with contiguous ones (`255.255.255.0`), or blank. */
export const parseNetmask: ValueParser<IpAddress | undefined> = (text) => {
  if (text === "") return ok(undefined);
  const ip = parseIp(text);
  const bits = ip?.bytes.map((b) => b.toString(2).padStart(8, "0")).join("") ?? "";
  if (!ip || ip.family !== 4 || !/^1*0*$/.test(bits)) {
    return fail(`must be a netmask such as 255.255.255.0, got "${text}"`);
  }
  return ok(ip);
};

/** An address or prefix, IPv4 or IPv6. */
export const parseCidrValue: ValueParser<Cidr> = (text) => {
  const cidr = parseCidr(text);
  return cidr ? ok(cidr) : fail(`must be an IP address or prefix (ip[/len]), got "${text}"`);
};

/** `ip[:port]`, port 22 by default. */
export const parseUpstream: ValueParser<IpEndpoint> = (text) => {
  const ep = parseIpEndpoint(text, 22);
  return typeof ep === "string" ? fail(ep) : ok(ep);
};

/** `ip:port` to listen on (the port is required), or blank for "off". */
export const parseListenAddress: ValueParser<IpEndpoint | undefined> = (text) => {
  if (text === "") return ok(undefined);
  const ep = parseIpEndpoint(text, 0);
  if (typeof ep === "string") return fail(ep);
  if (ep.port === 0) return fail(`must name a port (ip:port, [ipv6]:port), got "${text}"`);
  return ok(ep);
};

/** `ip[:port]`, or blank for "not set". */
export const parseOptionalUpstream: ValueParser<IpEndpoint | undefined> = (text) =>
  text === "" ? ok(undefined) : parseUpstream(text);

/** `name[:port]`. */
export const parseHostDomain: ValueParser<DomainEndpoint> = (text) => {
  const ep = parseDomainEndpoint(text);
  return typeof ep === "string" ? fail(ep) : ok(ep);
};

/**
 * Why a login name cannot be used, or undefined when it can. Names are what
 * the host allows (capitals, digits, dots, `@`, `DOMAIN\\user` or
 * `user@domain` from AD/LDAP): refused is only what could escape the key
 * directory or confuse a path, an argv or a log: `/`, `..`, a leading `-`,
 * control characters, and `%`/`$`, which newer OpenSSH expands in a login
 * name.
 */
export function userNameProblem(name: string): string | undefined {
  if (name === "" || name.length > 256) return "it is empty or over 256 characters";
  if (name.startsWith("-")) return "it starts with -";
  if (name === "." || name.includes("/") || name.includes("..")) return "it holds / or ..";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) return "it holds a control character";
  if (/[%$]/.test(name)) return "it holds % or $, which ssh would expand";
  return undefined;
}

/** A login name that is safe to put into a path, an argv and a log. */
export const parseUsername: ValueParser<string> = (text) => {
  const problem = userNameProblem(text);
  return problem
    ? fail(`must be a login name (${problem}), got ${JSON.stringify(text)}`)
    : ok(text);
};

/** A login name, or blank for "not set". */
export const parseOptionalUsername: ValueParser<string | undefined> = (text) =>
  text === "" ? ok(undefined) : parseUsername(text);

/** An absolute path without control characters or `..` segments. */
export const parseAbsolutePath: ValueParser<string> = (text) => {
  if (!text.startsWith("/")) return fail(`must be an absolute path, got "${text}"`);
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text)) return fail(`must not contain control characters`);
  if (text.split("/").includes("..")) return fail(`must not contain "..", got "${text}"`);
  return ok(text);
};

/** An absolute path short enough for a Unix socket address (107 bytes). */
export const parseSocketPath: ValueParser<string> = (text) => {
  const path = parseAbsolutePath(text);
  if (!path.ok) return path;
  return new TextEncoder().encode(text).length > 107
    ? fail(`must be at most 107 bytes long (a Unix socket's limit), got ${text.length}`)
    : path;
};

/** A Unix group name as groupadd accepts it. */
export const parseGroupName: ValueParser<string> = (text) =>
  /^[a-z_][a-z0-9_-]{0,31}$/i.test(text) ? ok(text) : fail(
    `must be a group name (letters, digits, _ and -, 1-32 characters), got ${JSON.stringify(text)}`,
  );

/** An absolute path, or blank for "not set". */
export const parseOptionalPath: ValueParser<string | undefined> = (text) =>
  text === "" ? ok(undefined) : parseAbsolutePath(text);

/** Like `parseAbsolutePath`, but `$(user)` may appear where a path segment's text goes. */
export const parseKeyfileTemplate: ValueParser<string | undefined> = (text) => {
  if (text === "") return ok(undefined);
  const stripped = text.replaceAll("$(user)", "user");
  if (stripped.includes("$(")) return fail(`may only use the $(user) variable, got "${text}"`);
  const path = parseAbsolutePath(stripped);
  return path.ok ? ok(text) : fail(path.message.replace(`"${stripped}"`, `"${text}"`));
};

/** A backend of `BACKENDS`: `iptables` or `nftables`. */
export const parseDnatBackend: ValueParser<BackendName> = (text) =>
  isBackendName(text) ? ok(text) : fail(`must be ${BACKEND_NAMES.join(" or ")}, got "${text}"`);

/** Only `round_robin` is supported, as in Aspera Proxy. */
export const parseBalancing: ValueParser<"round_robin"> = (text) =>
  text === "round_robin" ? ok(text) : fail(`must be round_robin (the only method), got "${text}"`);

const SHELL_META = /[;&|$`<>(){}\[\]*?!~#'"\\\n\r\t]/;
const SUBSYSTEM = /^[a-z0-9][a-z0-9._@-]{0,63}$/i;

/** One `<command>`: `*`, `subsystem:NAME`, or a program with required leading arguments. */
export const parseCommandPattern: ValueParser<CommandPattern> = (text) => {
  const trimmed = text.trim();
  if (trimmed === "*") return ok({ kind: "any" });
  if (trimmed.startsWith("subsystem:")) {
    const name = trimmed.slice("subsystem:".length);
    return SUBSYSTEM.test(name)
      ? ok({ kind: "subsystem", name })
      : fail(`must name a subsystem (subsystem:NAME), got "${text}"`);
  }
  const argv = trimmed.split(/\s+/).filter((w) => w !== "");
  const program = argv[0];
  if (program === undefined) return fail(`must not be empty`);
  if (argv.some((w) => SHELL_META.test(w))) {
    return fail(`must be plain words without shell metacharacters, got "${text}"`);
  }
  if (program.includes("/") || program.startsWith("-")) {
    return fail(`must start with a program name without a path, got "${program}"`);
  }
  return ok({ kind: "exec", argv });
};
