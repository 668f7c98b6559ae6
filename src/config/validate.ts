/**
 * Raw element tree → validated, frozen `Config`, plus every problem found.
 * @module
 */

import type { IpEndpoint } from "../net/endpoint.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import type { RawElement } from "./raw.ts";
import { Problems, SectionReader } from "./reader.ts";
import { unknownTagHint } from "./tag_hints.ts";
import {
  warnClientChosenRules,
  warnPortOverlap,
  warnRealAscp,
  warnShadowedRules,
} from "./warnings.ts";
import { ruleUdpSpan } from "./port_overlap.ts";
import { PROXY, RPROXY, RULE, RULE_DEFAULTS_IN_RPROXY, SERVER, STRUCTURE } from "./spec.ts";
import type {
  CommandPattern,
  Config,
  ForwardConfig,
  Problem,
  ReverseConfig,
  ReverseRule,
  ServerConfig,
} from "./types.ts";
import { parseCidrValue, parseHostDomain, parseUpstream, type ValueParser } from "./values.ts";

/** What validation found: the config when there were no errors, and every problem. */
export interface ValidationResult {
  readonly config?: Config;
  readonly problems: readonly Problem[];
}

/** Validates a parsed aspera.conf tree. `source` names the file in the result. */
export function validateConfig(root: RawElement, source: string): ValidationResult {
  const problems = new Problems();
  const serverElement = findServer(root, problems);
  const server = readServer(new SectionReader(problems, serverElement, serverTags()), problems);
  if (problems.hasErrors) return { problems: problems.list() };
  return { config: deepFreeze({ source, server }), problems: problems.list() };
}

function serverTags(): string[] {
  return [...Object.keys(SERVER), ...STRUCTURE.server];
}

function findServer(root: RawElement, problems: Problems): RawElement | undefined {
  if (root.name === "server") return root;
  if (root.name !== "CONF") {
    problems.error(
      root,
      root.name,
      `the root element must be <CONF> or <server>, got <${root.name}>`,
    );
    return undefined;
  }
  const servers = root.children.filter((c) => c.name === "server");
  for (const other of root.children.filter((c) => c.name !== "server")) {
    const hint = other.name === "default" || other.name === "aaa"
      ? ": it configures an Aspera transfer server; set it in the internal server's aspera.conf"
      : unknownTagHint(other.name, ["server"]);
    problems.warn(
      other,
      other.name,
      `<${other.name}> in <CONF> is not used by xferproxy (ignored)${hint}`,
    );
  }
  for (const extra of servers.slice(1)) {
    problems.error(
      extra,
      "server",
      `<server> appears twice in <CONF> (first at line ${servers[0]?.line})`,
    );
  }
  if (servers.length === 0) {
    problems.warn(root, "CONF", "<CONF> has no <server> section: every option takes its default");
  }
  return servers[0];
}

function readServer(reader: SectionReader, problems: Problems): ServerConfig {
  const server = {
    enableHttp: reader.value(SERVER.enable_http),
    enableHttps: reader.value(SERVER.enable_https),
    httpPort: reader.value(SERVER.http_port),
    httpsPort: reader.value(SERVER.https_port),
    stateDirectory: reader.value(SERVER.state_directory),
    dnatBackend: reader.value(SERVER.dnat_backend),
    serviceSocket: reader.value(SERVER.service_socket),
    metricsAddress: reader.value(SERVER.metrics_address),
  };
  const proxyReader = new SectionReader(problems, reader.child("proxy"), Object.keys(PROXY));
  const proxy = readProxy(proxyReader, problems);
  const rproxy = readReverse(reader.child("rproxy"), problems);
  if (proxy.enabled) {
    if (!server.enableHttp && !server.enableHttps) {
      problems.error(
        proxyReader.position,
        "proxy",
        "<proxy> is enabled but neither <enable_http> nor <enable_https> is true: the API would not listen",
      );
    }
    if (server.enableHttp && server.enableHttps && server.httpPort === server.httpsPort) {
      const at = reader.child("https_port") ?? reader.position;
      problems.error(
        at,
        "https_port",
        `<https_port> must differ from <http_port> (both ${server.httpPort})`,
      );
    }
    if (!proxy.authentication) {
      problems.warn(
        proxyReader.position,
        "authentication",
        "<authentication> is false: anyone who reaches the API can open forwarding to any public destination",
      );
    }
    const bind = proxy.bindIpAddress;
    const loopbackOnly = bind.family === 4 ? bind.bytes[0] === 127 : bind.text === "::1";
    if (server.enableHttp && !loopbackOnly) {
      problems.warn(
        proxyReader.position,
        "enable_http",
        `<enable_http> serves the API in plain text on ${bind.text}: passwords cross the network readable; use <enable_https>, or bind to 127.0.0.1`,
      );
    }
    if (server.enableHttps && (!proxy.certFile || !proxy.keyFile)) {
      problems.warn(
        proxyReader.position,
        "cert_file",
        "<enable_https> is true but <proxy> has no <cert_file> and <key_file>: the daemon serves HTTPS with a self-signed certificate it generates in <state_directory>/forward on first start",
      );
    }
    if (rproxy.enabled) {
      const at = proxyReader.child("port_range_low") ?? proxyReader.child("port_range_high") ??
        proxyReader.position;
      warnPortOverlap({ config: proxy, at }, rproxy.rules, problems);
    }
  }
  return { ...server, proxy, rproxy };
}

function readProxy(reader: SectionReader, problems: Problems): ForwardConfig {
  const interval = (spec: typeof PROXY.cleanup_interval) => {
    const seconds = reader.value(spec);
    return seconds === 0 ? spec.zeroMeans ?? 0 : seconds;
  };
  const low = reader.value(PROXY.port_range_low);
  const high = reader.value(PROXY.port_range_high);
  if (low > high) {
    const at = reader.child("port_range_low") ?? reader.position;
    problems.error(
      at,
      "port_range_low",
      `<port_range_low> ${low} must not be above <port_range_high> ${high}`,
    );
  }
  const bindIpNetmask = reader.value(PROXY.bind_ip_netmask);
  const certFile = reader.value(PROXY.cert_file);
  const keyFile = reader.value(PROXY.key_file);
  return {
    enabled: reader.value(PROXY.enabled),
    authentication: reader.value(PROXY.authentication),
    bindIpAddress: reader.value(PROXY.bind_ip_address),
    ...(bindIpNetmask ? { bindIpNetmask } : {}),
    portRangeLow: low,
    portRangeHigh: high,
    cleanupInterval: interval(PROXY.cleanup_interval),
    keepaliveInterval: interval(PROXY.keepalive_interval),
    sessionTimeout: interval(PROXY.session_timeout),
    ...(certFile ? { certFile } : {}),
    ...(keyFile ? { keyFile } : {}),
    usersFile: reader.value(PROXY.users_file),
    maxSessionsPerUser: reader.value(PROXY.max_sessions_per_user),
  };
}

function readReverse(element: RawElement | undefined, problems: Problems): ReverseConfig {
  const known = [...Object.keys(RPROXY), ...RULE_DEFAULTS_IN_RPROXY, ...STRUCTURE.rproxy];
  const reader = new SectionReader(problems, element, known);
  const enabled = reader.value(RPROXY.enabled);
  const logDirectory = reader.value(RPROXY.log_directory);
  const inherited = {
    allowedCommands: reader.list(RULE.allowed_commands),
    udpCommands: reader.list(RULE.udp_commands),
    connectTimeout: reader.value(RULE.connect_timeout),
  };
  const rulesReader = new SectionReader(problems, reader.child("rules"), STRUCTURE.rules, {
    repeatable: STRUCTURE.rules,
  });
  const ruleElements = rulesReader.element?.children.filter((c) => c.name === "rule") ?? [];
  const rules = ruleElements.map((el, i) => readRule(el, i + 1, enabled, inherited, problems));
  if (enabled && rules.length === 0) {
    const at = rulesReader.element ?? reader.position;
    problems.error(
      at,
      "rules",
      "<rproxy> is enabled but has no <rule>: every session would be refused",
    );
  }
  warnShadowedRules(rules, ruleElements, problems);
  warnClientChosenRules(rules, ruleElements, problems);
  return {
    enabled,
    logLevel: reader.value(RPROXY.log_level),
    ...(logDirectory ? { logDirectory } : {}),
    knownHosts: reader.value(RPROXY.known_hosts),
    proxyGroup: reader.value(RPROXY.proxy_group),
    rules,
  };
}

function readRule(
  element: RawElement,
  index: number,
  enabled: boolean,
  inherited: {
    allowedCommands: CommandPattern[];
    udpCommands: CommandPattern[];
    connectTimeout: number;
  },
  problems: Problems,
): ReverseRule {
  const reader = new SectionReader(problems, element, [...Object.keys(RULE), ...STRUCTURE.rule], {
    strict: true,
  });
  const name = `<rule> ${index}`;
  const attribute = <T>(attr: string, parse: ValueParser<T>): T | undefined => {
    const text = element.attributes[attr];
    if (text === undefined) return undefined;
    const parsed = parse(text.trim());
    if (parsed.ok) return parsed.value;
    problems.error(element, "rule", `${name} attribute ${attr} ${parsed.message}`);
    return undefined;
  };
  for (const attr of Object.keys(element.attributes)) {
    if (!(STRUCTURE.ruleAttributes as readonly string[]).includes(attr)) {
      problems.warn(
        element,
        "rule",
        `${name} has unknown attribute ${attr} (ignored); use host_ip or host_domain`,
      );
    }
  }
  const hostIp = attribute("host_ip", parseCidrValue);
  const hostDomain = attribute("host_domain", parseHostDomain);
  const upstreams = readUpstreams(reader, name, enabled, problems);
  const squashUser = reader.value(RULE.squash_user);
  const keyfile = reader.value(RULE.keyfile);
  const proxyPort = reader.value(RULE.proxy_port);
  if (enabled && !keyfile && !(reader.child("keyfile")?.text)) {
    problems.error(
      element,
      "keyfile",
      `${name} needs a <keyfile> to log in to the internal server`,
    );
  }
  if (reader.has("balancing") && !reader.has("hosts")) {
    problems.warn(
      reader.child("balancing") ?? element,
      "balancing",
      `<balancing> in ${name} only applies to <hosts> (ignored)`,
    );
  }
  const udpPort = reader.value(RULE.udp_port);
  const udpPortReuse = reader.value(RULE.udp_port_reuse);
  const udpPortCount = reader.value(RULE.udp_port_count);
  const srcPortFiltering = reader.value(RULE.src_port_filtering);
  const span = udpPortReuse ? 1 : udpPortCount;
  if (ruleUdpSpan({ proxyPort, udpPort, udpPortReuse, udpPortCount }).high > 65535) {
    problems.error(
      reader.child("udp_port_count") ?? reader.child("udp_port") ?? element,
      "udp_port_count",
      `${name}: ${span} UDP ports from ${proxyPort || udpPort} run past 65535`,
    );
  }
  if (enabled) {
    warnRealAscp(reader, element, name, { proxyPort, udpPort, span }, problems);
    if (!srcPortFiltering && upstreams.length > 1) {
      problems.warn(
        reader.child("src_port_filtering") ?? element,
        "src_port_filtering",
        `${name}: with <src_port_filtering> false, UDP of one client cannot be told apart between its <hosts>: while a session of a client is forwarded to one host, its sessions to another host get no UDP forwarding`,
      );
    }
  }
  return {
    index,
    line: element.line,
    ...(hostIp ? { hostIp } : {}),
    ...(hostDomain ? { hostDomain } : {}),
    proxyPort,
    upstreams,
    ...(reader.has("hosts") ? { balancing: reader.value(RULE.balancing) } : {}),
    ...(squashUser ? { squashUser } : {}),
    ...(keyfile ? { keyfile } : {}),
    srcPortFiltering,
    udpPortReuse,
    udpPort,
    udpPortCount,
    allowedCommands: reader.list(RULE.allowed_commands, inherited.allowedCommands),
    udpCommands: reader.list(RULE.udp_commands, inherited.udpCommands),
    connectTimeout: reader.has("connect_timeout")
      ? reader.value(RULE.connect_timeout)
      : inherited.connectTimeout,
  };
}

function readUpstreams(
  reader: SectionReader,
  name: string,
  enabled: boolean,
  problems: Problems,
): IpEndpoint[] {
  const single = reader.child("host");
  const list = reader.child("hosts");
  const at = reader.position;
  if (single && list) {
    problems.error(list, "hosts", `${name} has both <host> and <hosts>: use one`);
    return [];
  }
  if (single) {
    const upstream = reader.value(RULE.host);
    if (upstream) return [upstream];
    if (enabled && single.text === "") {
      problems.error(
        single,
        "host",
        `<host> in ${name} is empty: give the internal server as ip[:port]`,
      );
    }
    return [];
  }
  if (list) {
    const upstreams: IpEndpoint[] = [];
    for (const el of list.children) {
      if (el.name !== "host") {
        problems.warn(
          el,
          el.name,
          `unknown tag <${el.name}> in <hosts> (ignored); expected <host>`,
        );
        continue;
      }
      const parsed = parseUpstream(el.text);
      if (!parsed.ok) {
        problems.error(el, "host", `<host> in <hosts> of ${name} ${parsed.message}`);
      } else if (upstreams.some((u) => formatEndpoint(u) === formatEndpoint(parsed.value))) {
        problems.warn(
          el,
          "host",
          `<host> ${formatEndpoint(parsed.value)} is listed twice in ${name}`,
        );
      } else {
        upstreams.push(parsed.value);
      }
    }
    if (!list.children.some((c) => c.name === "host")) {
      problems.error(list, "hosts", `<hosts> in ${name} lists no <host>`);
    }
    return upstreams;
  }
  if (enabled) {
    problems.error(
      at,
      "rule",
      `${name} needs <host> or <hosts>: the internal server to forward to`,
    );
  }
  return [];
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value as Record<string, unknown>)) deepFreeze(inner);
  }
  return value;
}
