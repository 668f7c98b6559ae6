/**
 * Every example configuration of the seed documents parses to the values the
 * seed describes.
 */
import { assertEquals, assertOk } from "../_assert.ts";
import { formatEndpoint } from "../../src/net/endpoint.ts";
import { errorsOf, parseFixture } from "./_load.ts";
import type { CommandPattern } from "../../src/config/mod.ts";

const DEFAULT_COMMANDS: CommandPattern[] = [
  { kind: "exec", argv: ["ascp"] },
  { kind: "exec", argv: ["ascp4"] },
  { kind: "exec", argv: ["async"] },
  { kind: "exec", argv: ["ascmd"] },
  { kind: "exec", argv: ["scp"] },
  { kind: "exec", argv: ["rsync", "--server"] },
  { kind: "subsystem", name: "sftp" },
];

Deno.test("seed two-rule example: squash rule for 7.7.7.7, individual rule for 7.7.8.0/24", () => {
  const report = parseFixture("seeds/two_rules.conf");
  assertEquals(errorsOf(report), []);
  assertEquals(report.problems, []);
  const rproxy = report.config!.server.rproxy;
  assertEquals(rproxy.enabled, true);
  assertEquals(rproxy.rules.length, 2);
  const [squash, individual] = rproxy.rules;
  assertEquals(squash!.hostIp?.text, "7.7.7.7/32");
  assertEquals(squash!.upstreams.map(formatEndpoint), ["10.0.0.10:22"]);
  assertEquals(squash!.squashUser, "xfer");
  assertEquals(squash!.keyfile, "/opt/aspera/proxy/etc/ssh_keys/id_rsa");
  assertEquals(squash!.proxyPort, 33001);
  assertEquals(squash!.srcPortFiltering, true);
  assertEquals(squash!.udpPortReuse, true);
  assertEquals(squash!.udpPort, 33001);
  assertEquals(squash!.balancing, undefined);
  assertEquals(squash!.allowedCommands, DEFAULT_COMMANDS);
  assertEquals(squash!.connectTimeout, 10);
  assertEquals(individual!.hostIp?.text, "7.7.8.0/24");
  assertEquals(individual!.upstreams.map(formatEndpoint), ["10.0.0.30:22"]);
  assertEquals(individual!.squashUser, undefined);
  assertEquals(individual!.keyfile, "/home/$(user)/.ssh/id_rsa");
  assertEquals(rproxy.logLevel, 0);
  assertEquals(rproxy.logDirectory, undefined);
  assertEquals(rproxy.knownHosts, "/etc/xferproxy/known_hosts");
});

Deno.test("seed load-balancing example: three hosts, round robin, port kept", () => {
  const report = parseFixture("seeds/load_balancing.conf");
  assertEquals(report.problems, []);
  const [rule] = report.config!.server.rproxy.rules;
  assertEquals(rule!.hostIp?.text, "10.20.101.151/32");
  assertEquals(rule!.balancing, "round_robin");
  assertEquals(rule!.upstreams.map(formatEndpoint), [
    "10.20.103.133:33001",
    "10.20.103.134:33001",
    "10.20.103.135:33001",
  ]);
  assertEquals(rule!.keyfile, "/home/$(user)/.ssh/id_rsa");
});

Deno.test("seed forward example: HTTP and HTTPS on, proxy enabled, every other default", () => {
  const report = parseFixture("seeds/forward.conf");
  assertEquals(errorsOf(report), []);
  const server = report.config!.server;
  assertEquals([server.enableHttp, server.enableHttps, server.httpPort, server.httpsPort], [
    true,
    true,
    9091,
    9092,
  ]);
  const proxy = server.proxy;
  assertEquals(proxy.enabled, true);
  assertEquals(proxy.authentication, false);
  assertEquals(proxy.bindIpAddress.text, "0.0.0.0");
  assertEquals(proxy.bindIpNetmask, undefined);
  assertEquals([proxy.portRangeLow, proxy.portRangeHigh], [5000, 10000]);
  assertEquals([proxy.cleanupInterval, proxy.keepaliveInterval, proxy.sessionTimeout], [5, 10, 60]);
  // HTTPS without a certificate, no authentication and plain HTTP beyond loopback are allowed in
  // the file (Aspera Proxy's defaults), but said out loud.
  assertEquals(report.problems.map((p) => p.message), [
    "<authentication> is false: anyone who reaches the API can open forwarding to any public destination",
    "<enable_http> serves the API in plain text on 0.0.0.0: passwords cross the network readable; use <enable_https>, or bind to 127.0.0.1",
    "<enable_https> is true but <proxy> has no <cert_file> and <key_file>: the daemon serves HTTPS with a self-signed certificate it generates in <state_directory>/forward on first start",
  ]);
});

Deno.test("seed option specs (asuserdata -s output) parse cleanly to the defaults", () => {
  const forward = parseFixture("seeds/forward_spec.conf");
  assertEquals(forward.problems, []);
  assertEquals(forward.config!.server.proxy.enabled, false);
  assertEquals(forward.config!.server.proxy.portRangeHigh, 10000);
  const reverse = parseFixture("seeds/rproxy_spec.conf");
  assertEquals(reverse.problems, []);
  const [rule] = reverse.config!.server.rproxy.rules;
  assertEquals(rule!.upstreams, []);
  assertEquals(rule!.proxyPort, 33001);
  assertEquals(rule!.keyfile, undefined);
});

Deno.test("seed <src_port_filtering> snippet turns filtering off for its rule", () => {
  const report = parseFixture("seeds/src_port_filtering.conf");
  assertEquals(report.problems, []);
  const rproxy = report.config!.server.rproxy;
  assertEquals(rproxy.enabled, false);
  assertEquals(rproxy.rules[0]!.srcPortFiltering, false);
  assertEquals(rproxy.rules[0]!.hostIp, undefined);
  assertEquals(rproxy.rules[0]!.hostDomain, undefined);
});

Deno.test("the validated config is deeply frozen", () => {
  const config = parseFixture("seeds/two_rules.conf").config;
  assertOk(config);
  assertOk(Object.isFrozen(config));
  assertOk(Object.isFrozen(config.server.rproxy.rules));
  assertOk(Object.isFrozen(config.server.rproxy.rules[0]!.upstreams[0]!.ip.bytes));
});
