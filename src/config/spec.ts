/**
 * The one table of options: tag, default, type, description and parser.
 * Validation reads defaults from here (parsed by the same parser as the file),
 * `xferproxy check defaults` prints it, and docs/configuration.md mirrors it.
 * @module
 */

import {
  parseAbsolutePath,
  parseBalancing,
  parseBoolean,
  parseCommandPattern,
  parseDnatBackend,
  parseGroupName,
  parseIpValue,
  parseKeyfileTemplate,
  parseListenAddress,
  parseLogLevel,
  parseNetmask,
  parseOptionalPath,
  parseOptionalUpstream,
  parseOptionalUsername,
  parsePortCount,
  parsePortOrZero,
  parsePortValue,
  parseSeconds,
  parseSessionCap,
  parseSocketPath,
  parseTimeout,
  type ValueParser,
} from "./values.ts";
import { BACKEND_NAMES, DEFAULT_BACKEND } from "../dnat/backends.ts";

/** One option: how it is written, what it means, and how its text is parsed. */
export interface OptionSpec<T = unknown> {
  readonly tag: string;
  /** The default, as it would be written in the file. */
  readonly default: string;
  /** The accepted values, for people. */
  readonly type: string;
  readonly description: string;
  readonly parse: ValueParser<T>;
  /** Not in the Aspera product: an xferproxy extension. */
  readonly extension?: true;
  /** For intervals where the file's 0 means "built-in default": that default, in seconds. */
  readonly zeroMeans?: number;
  /** A list option: `<tag><item>…</item></tag>`. */
  readonly item?: string;
}

function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

/** `<server>` options (other than the `<proxy>` and `<rproxy>` sections). */
export const SERVER = {
  enable_http: option({
    tag: "enable_http",
    default: "false",
    type: "true|false",
    description: "Serve the forward-proxy API over HTTP on http_port",
    parse: parseBoolean,
  }),
  enable_https: option({
    tag: "enable_https",
    default: "false",
    type: "true|false",
    description: "Serve the forward-proxy API over HTTPS on https_port",
    parse: parseBoolean,
  }),
  http_port: option({
    tag: "http_port",
    default: "9091",
    type: "port 1-65535",
    description: "HTTP port of the forward-proxy API",
    parse: parsePortValue,
  }),
  https_port: option({
    tag: "https_port",
    default: "9092",
    type: "port 1-65535",
    description: "HTTPS port of the forward-proxy API",
    parse: parsePortValue,
  }),
  state_directory: option({
    tag: "state_directory",
    default: "/var/lib/xferproxy",
    type: "absolute path",
    description:
      "Root's: balancer/ shared by sessions, dnat/ the DNAT registry, forward/ the generated HTTPS certificate",
    parse: parseAbsolutePath,
    extension: true,
  }),
  dnat_backend: option({
    tag: "dnat_backend",
    default: DEFAULT_BACKEND,
    type: BACKEND_NAMES.join("|"),
    description: "Netfilter front end that installs the DNAT rules of reverse and forward sessions",
    parse: parseDnatBackend,
    extension: true,
  }),
  service_socket: option({
    tag: "service_socket",
    default: "/run/xferproxy/dnat.sock",
    type: "absolute path",
    description:
      "The DNAT service's local socket, where reverse sessions register (root and proxy_group only)",
    parse: parseSocketPath,
    extension: true,
  }),
  metrics_address: option({
    tag: "metrics_address",
    default: "127.0.0.1:9094",
    type: "ip:port or blank",
    description:
      "Where the DNAT service serves /metrics and /healthz (plain HTTP, no authentication); blank = off",
    parse: parseListenAddress,
    extension: true,
  }),
} as const;

/** `<server><proxy>`: forward proxy options. */
export const PROXY = {
  enabled: option({
    tag: "enabled",
    default: "false",
    type: "true|false",
    description: "Turn the forward proxy on; it refuses to start otherwise",
    parse: parseBoolean,
  }),
  authentication: option({
    tag: "authentication",
    default: "false",
    type: "true|false",
    description: "Require HTTP Basic authentication of API users",
    parse: parseBoolean,
  }),
  bind_ip_address: option({
    tag: "bind_ip_address",
    default: "0.0.0.0",
    type: "IP address",
    description: "Address the API listens on and clients connect to (0.0.0.0 = all)",
    parse: parseIpValue,
  }),
  bind_ip_netmask: option({
    tag: "bind_ip_netmask",
    default: "",
    type: "netmask or blank",
    description: "Netmask of bind_ip_address; blank = the address alone",
    parse: parseNetmask,
  }),
  port_range_low: option({
    tag: "port_range_low",
    default: "5000",
    type: "port 1-65535",
    description: "Lowest proxy port handed to sessions; open it in the firewall",
    parse: parsePortValue,
  }),
  port_range_high: option({
    tag: "port_range_high",
    default: "10000",
    type: "port 1-65535",
    description: "Highest proxy port handed to sessions; open it in the firewall",
    parse: parsePortValue,
  }),
  cleanup_interval: option({
    tag: "cleanup_interval",
    default: "0",
    type: "seconds, 0 = built-in 5",
    description: "How often expired sessions are looked for and removed",
    parse: parseSeconds,
    zeroMeans: 5,
  }),
  keepalive_interval: option({
    tag: "keepalive_interval",
    default: "0",
    type: "seconds, 0 = built-in 10",
    description: "How often clients send keepalives (told to the client)",
    parse: parseSeconds,
    zeroMeans: 10,
  }),
  session_timeout: option({
    tag: "session_timeout",
    default: "0",
    type: "seconds, 0 = built-in 60",
    description: "A session with no keepalive for this long is removed",
    parse: parseSeconds,
    zeroMeans: 60,
  }),
  cert_file: option({
    tag: "cert_file",
    default: "",
    type: "absolute path or blank",
    description:
      "PEM certificate chain for HTTPS, with key_file; without both, a self-signed one made in <state_directory>/forward",
    parse: parseOptionalPath,
    extension: true,
  }),
  key_file: option({
    tag: "key_file",
    default: "",
    type: "absolute path or blank",
    description: "PEM private key of cert_file",
    parse: parseOptionalPath,
    extension: true,
  }),
  max_sessions_per_user: option({
    tag: "max_sessions_per_user",
    default: "128",
    type: "1-65535",
    description: "Live sessions one API user may hold (per client address with authentication off)",
    parse: parseSessionCap,
    extension: true,
  }),
  users_file: option({
    tag: "users_file",
    default: "/etc/xferproxy/users.json",
    type: "absolute path",
    description: "API users with scrypt password hashes; root-only",
    parse: parseAbsolutePath,
    extension: true,
  }),
} as const;

/** `<server><rproxy>`: reverse proxy options outside the rules. */
export const RPROXY = {
  enabled: option({
    tag: "enabled",
    default: "false",
    type: "true|false",
    description: "Turn the reverse proxy on; sessions are refused otherwise",
    parse: parseBoolean,
  }),
  log_level: option({
    tag: "log_level",
    default: "0",
    type: "0|1|2",
    description: "0 = normal, 1 = debug, 2 = trace",
    parse: parseLogLevel,
  }),
  log_directory: option({
    tag: "log_directory",
    default: "",
    type: "absolute path or blank",
    description:
      "Directory for xferproxy.log (sessions) and root/xferproxy.log (root); blank = syslog",
    parse: parseOptionalPath,
  }),
  known_hosts: option({
    tag: "known_hosts",
    default: "/etc/xferproxy/known_hosts",
    type: "absolute path",
    description: "Pinned host keys of the internal servers (OpenSSH format)",
    parse: parseAbsolutePath,
    extension: true,
  }),
  proxy_group: option({
    tag: "proxy_group",
    default: "xferproxy",
    type: "group name",
    description: "Unix group of the proxy users: may open the DNAT service's socket",
    parse: parseGroupName,
    extension: true,
  }),
} as const;

/** Options a `<rule>` may set; those marked in `RULE_DEFAULTS_IN_RPROXY` may also be set in `<rproxy>` for all rules. */
export const RULE = {
  proxy_port: option({
    tag: "proxy_port",
    default: "33001",
    type: "port 0-65535",
    description: "UDP port the proxy receives FASP on; 0 = the internal server's port",
    parse: parsePortOrZero,
  }),
  host: option({
    tag: "host",
    default: "",
    type: "ip[:port]",
    description: "Internal server and its SSH port (22 if omitted)",
    parse: parseOptionalUpstream,
  }),
  balancing: option({
    tag: "balancing",
    default: "round_robin",
    type: "round_robin",
    description: "How sessions are spread over <hosts>",
    parse: parseBalancing,
  }),
  squash_user: option({
    tag: "squash_user",
    default: "",
    type: "user name or blank",
    description: "Account used on the internal server; blank = the proxy user's own",
    parse: parseOptionalUsername,
  }),
  keyfile: option({
    tag: "keyfile",
    default: "",
    type: "absolute path, may hold $(user)",
    description: "SSH private key for the internal server",
    parse: parseKeyfileTemplate,
  }),
  src_port_filtering: option({
    tag: "src_port_filtering",
    default: "true",
    type: "true|false",
    description: "Forward UDP only from the client's transfer source port",
    parse: parseBoolean,
  }),
  udp_port_reuse: option({
    tag: "udp_port_reuse",
    default: "true",
    type: "true|false",
    description: "false = the internal server gives each concurrent session its own UDP port",
    parse: parseBoolean,
  }),
  udp_port: option({
    tag: "udp_port",
    default: "33001",
    type: "port 1-65535",
    description: "The internal server's FASP UDP port",
    parse: parsePortValue,
    extension: true,
  }),
  udp_port_count: option({
    tag: "udp_port_count",
    default: "10",
    type: "ports 1-1000",
    description: "With udp_port_reuse false: how many ports from udp_port the server hands out",
    parse: parsePortCount,
    extension: true,
  }),
  allowed_commands: option({
    tag: "allowed_commands",
    default: "ascp,ascp4,async,ascmd,scp,rsync --server,subsystem:sftp",
    type: "<command> entries",
    description: "Commands clients may run upstream: program [args], subsystem:NAME or *",
    parse: parseCommandPattern,
    extension: true,
    item: "command",
  }),
  udp_commands: option({
    tag: "udp_commands",
    default: "ascp,ascp4,async",
    type: "<command> entries",
    description: "Commands whose sessions get UDP forwarding (FASP); others start no DNAT",
    parse: parseCommandPattern,
    extension: true,
    item: "command",
  }),
  connect_timeout: option({
    tag: "connect_timeout",
    default: "10",
    type: "seconds 1-300",
    description: "Wait this long for an internal server before marking it faulty",
    parse: parseTimeout,
    extension: true,
  }),
} as const;

/** Rule options that `<rproxy>` may also set, as the default for every rule. */
export const RULE_DEFAULTS_IN_RPROXY = [
  "allowed_commands",
  "udp_commands",
  "connect_timeout",
] as const;

/** Container tags, and the attributes of `<rule>`. */
export const STRUCTURE = {
  root: ["CONF", "server"],
  server: ["proxy", "rproxy"],
  rproxy: ["rules"],
  rules: ["rule"],
  rule: ["hosts"],
  hosts: ["host"],
  ruleAttributes: ["host_ip", "host_domain"],
} as const;

/** Seconds a host that did not answer stays out of rotation (Aspera Proxy: two minutes). */
export const FAULTY_SECONDS = 120;

/** The default config path; `--config` and `XFERPROXY_CONFIG` override it. */
export const DEFAULT_CONFIG_PATH = "/etc/xferproxy/aspera.conf";
