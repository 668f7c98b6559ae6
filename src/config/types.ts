/**
 * The validated, frozen configuration every mode works from.
 * Built by `validateConfig()` from the raw XML tree; never mutated.
 * @module
 */

import type { Cidr, IpAddress } from "../net/ip.ts";
import type { DomainEndpoint, IpEndpoint } from "../net/endpoint.ts";
import type { BackendName } from "../dnat/backends.ts";

/** An entry of `<allowed_commands>`. */
export type CommandPattern =
  | { readonly kind: "any" }
  | { readonly kind: "subsystem"; readonly name: string }
  /** A program name and the leading arguments it must be given, e.g. `rsync --server`. */
  | { readonly kind: "exec"; readonly argv: readonly string[] };

/** One `<rule>` of `<rproxy><rules>`. */
export interface ReverseRule {
  /** 1-based position among the rules, for messages. */
  readonly index: number;
  readonly line: number;
  readonly hostIp?: Cidr;
  readonly hostDomain?: DomainEndpoint;
  /** UDP port the proxy receives FASP on; 0 = the internal server's own port(s). */
  readonly proxyPort: number;
  /** `<host>`, or every `<hosts><host>` in order. Empty only when reverse proxy is disabled. */
  readonly upstreams: readonly IpEndpoint[];
  /** Set when the rule uses `<hosts>`. */
  readonly balancing?: "round_robin";
  readonly squashUser?: string;
  /** Private key path, possibly holding `$(user)`; expand with `expandKeyfile()`. */
  readonly keyfile?: string;
  readonly srcPortFiltering: boolean;
  readonly udpPortReuse: boolean;
  /** The internal server's FASP UDP port. */
  readonly udpPort: number;
  /** With `udpPortReuse` false: how many ports from `udpPort` the server hands out. */
  readonly udpPortCount: number;
  readonly allowedCommands: readonly CommandPattern[];
  /** Commands whose sessions get UDP forwarding. */
  readonly udpCommands: readonly CommandPattern[];
  /** Seconds to wait for an upstream before marking it faulty. */
  readonly connectTimeout: number;
}

/** `<server><rproxy>`: the reverse proxy. */
export interface ReverseConfig {
  readonly enabled: boolean;
  readonly logLevel: 0 | 1 | 2;
  /** Blank means syslog. */
  readonly logDirectory?: string;
  readonly knownHosts: string;
  /** The Unix group of the proxy users (the DNAT service's socket is theirs and root's). */
  readonly proxyGroup: string;
  readonly rules: readonly ReverseRule[];
}

/** `<server><proxy>`: the forward proxy. */
export interface ForwardConfig {
  readonly enabled: boolean;
  readonly authentication: boolean;
  readonly bindIpAddress: IpAddress;
  readonly bindIpNetmask?: IpAddress;
  readonly portRangeLow: number;
  readonly portRangeHigh: number;
  /** Seconds; the built-in default already applied when the file says 0. */
  readonly cleanupInterval: number;
  readonly keepaliveInterval: number;
  readonly sessionTimeout: number;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly usersFile: string;
  /** Live sessions per API user (per client address without authentication). */
  readonly maxSessionsPerUser: number;
}

/** `<server>`. */
export interface ServerConfig {
  readonly enableHttp: boolean;
  readonly enableHttps: boolean;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly stateDirectory: string;
  readonly dnatBackend: BackendName;
  /** The DNAT service's local socket. */
  readonly serviceSocket: string;
  /** Where the DNAT service serves /metrics and /healthz; undefined = off. */
  readonly metricsAddress: IpEndpoint | undefined;
  readonly proxy: ForwardConfig;
  readonly rproxy: ReverseConfig;
}

/** A whole validated configuration file. */
export interface Config {
  /** The file it came from, for messages. */
  readonly source: string;
  readonly server: ServerConfig;
}

/** Where a problem was found. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** A finding of validation: errors make the config unusable, warnings do not. */
export interface Problem extends Position {
  readonly severity: "error" | "warning";
  /** The tag the problem is about, without brackets. */
  readonly tag: string;
  /** Starts with the tag, e.g. `<proxy_port> must be an integer 1-65535, got "abc"`. */
  readonly message: string;
  /** What to do about it, when the generic advice of `check config` does not fit. */
  readonly fix?: string;
}
