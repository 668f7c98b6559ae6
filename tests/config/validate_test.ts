/**
 * Every validation error and warning, with the line it is reported on.
 */
import { assertEquals, assertMatch, assertOk } from "../_assert.ts";
import { errorsOf, parseInline, warningsOf } from "./_load.ts";

/** A config whose rproxy holds `rule` (one line per element so lines are predictable). */
function withRule(rule: string, rproxyExtra = ""): string {
  return `<server>\n<rproxy>\n<enabled>true</enabled>\n${rproxyExtra}<rules>\n${rule}\n</rules>\n</rproxy>\n</server>`;
}

const GOOD_RULE = `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n</rule>`;

Deno.test("validateConfig() reports each bad value with its tag and line", async (t) => {
  const cases: Array<[string, string, string]> = [
    [
      "port not a number",
      `<server>\n<http_port>abc</http_port>\n</server>`,
      `2: <http_port> must be an integer 1-65535, got "abc"`,
    ],
    [
      "port zero",
      `<server>\n<https_port>0</https_port>\n</server>`,
      `2: <https_port> must be an integer 1-65535, got "0"`,
    ],
    [
      "port too big",
      `<server>\n<proxy>\n<port_range_low>70000</port_range_low>\n</proxy>\n</server>`,
      `3: <port_range_low> must be an integer 1-65535, got "70000"`,
    ],
    [
      "boolean yes",
      `<server>\n<enable_http>yes</enable_http>\n</server>`,
      `2: <enable_http> must be true or false, got "yes"`,
    ],
    [
      "boolean case",
      `<server>\n<rproxy>\n<enabled>True</enabled>\n</rproxy>\n</server>`,
      `3: <enabled> must be true or false, got "True"`,
    ],
    [
      "range inverted",
      `<server>\n<proxy>\n<port_range_low>9000</port_range_low>\n<port_range_high>8000</port_range_high>\n</proxy>\n</server>`,
      `3: <port_range_low> 9000 must not be above <port_range_high> 8000`,
    ],
    [
      "log level",
      `<server>\n<rproxy>\n<log_level>3</log_level>\n</rproxy>\n</server>`,
      `3: <log_level> must be 0, 1 or 2, got "3"`,
    ],
    [
      "relative log dir",
      `<server>\n<rproxy>\n<log_directory>logs</log_directory>\n</rproxy>\n</server>`,
      `3: <log_directory> must be an absolute path, got "logs"`,
    ],
    [
      "bind ip",
      `<server>\n<proxy>\n<bind_ip_address>any</bind_ip_address>\n</proxy>\n</server>`,
      `3: <bind_ip_address> must be an IP address, got "any"`,
    ],
    [
      "netmask holes",
      `<server>\n<proxy>\n<bind_ip_netmask>255.0.255.0</bind_ip_netmask>\n</proxy>\n</server>`,
      `3: <bind_ip_netmask> must be a netmask such as 255.255.255.0, got "255.0.255.0"`,
    ],
    [
      "interval",
      `<server>\n<proxy>\n<session_timeout>-1</session_timeout>\n</proxy>\n</server>`,
      `3: <session_timeout> must be a whole number of seconds 0-86400, got "-1"`,
    ],
    [
      "dnat backend",
      `<server>\n<dnat_backend>pf</dnat_backend>\n</server>`,
      `2: <dnat_backend> must be iptables or nftables, got "pf"`,
    ],
    [
      "value holds elements",
      `<server>\n<http_port><x/></http_port>\n</server>`,
      `2: <http_port> must hold a value, not elements`,
    ],
    [
      "duplicate option",
      `<server>\n<http_port>1</http_port>\n<http_port>2</http_port>\n</server>`,
      `3: <http_port> appears twice in <server> (first at line 2)`,
    ],
    [
      "bad root",
      `<config>\n</config>`,
      `1: the root element must be <CONF> or <server>, got <config>`,
    ],
    [
      "two servers",
      `<CONF>\n<server/>\n<server/>\n</CONF>`,
      `3: <server> appears twice in <CONF> (first at line 2)`,
    ],
    [
      "proxy without listener",
      `<server>\n<proxy>\n<enabled>true</enabled>\n</proxy>\n</server>`,
      `2: <proxy> is enabled but neither <enable_http> nor <enable_https> is true: the API would not listen`,
    ],
    [
      "same api ports",
      `<server>\n<enable_http>true</enable_http>\n<enable_https>true</enable_https>\n<https_port>9091</https_port>\n<proxy>\n<enabled>true</enabled>\n<cert_file>/c</cert_file>\n<key_file>/k</key_file>\n</proxy>\n</server>`,
      `4: <https_port> must differ from <http_port> (both 9091)`,
    ],
  ];
  for (const [name, xml, expected] of cases) {
    await t.step(name, () => {
      const report = parseInline(xml);
      assertEquals(errorsOf(report), [expected]);
      assertEquals(report.config, undefined);
    });
  }
});

Deno.test("validateConfig() checks every rule of an enabled reverse proxy", async (t) => {
  const cases: Array<[string, string, string]> = [
    [
      "bad host_ip",
      `<rule host_ip="7.7.7.300">\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n</rule>`,
      `5: <rule> 1 attribute host_ip must be an IP address or prefix (ip[/len]), got "7.7.7.300"`,
    ],
    [
      "bad prefix",
      `<rule host_ip="7.7.8.0/40">\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n</rule>`,
      `5: <rule> 1 attribute host_ip must be an IP address or prefix (ip[/len]), got "7.7.8.0/40"`,
    ],
    [
      "bad host_domain",
      `<rule host_domain="files.example:0">\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n</rule>`,
      `5: <rule> 1 attribute host_domain port must be an integer 1-65535, got "0" in "files.example:0"`,
    ],
    [
      "host name as host",
      `<rule>\n<host>internal.example:22</host>\n<keyfile>/k</keyfile>\n</rule>`,
      `6: <host> must be an IP address with an optional port (ip[:port]), got "internal.example:22"`,
    ],
    [
      "empty host",
      `<rule>\n<host></host>\n<keyfile>/k</keyfile>\n</rule>`,
      `6: <host> in <rule> 1 is empty: give the internal server as ip[:port]`,
    ],
    [
      "no host",
      `<rule>\n<keyfile>/k</keyfile>\n</rule>`,
      `5: <rule> 1 needs <host> or <hosts>: the internal server to forward to`,
    ],
    [
      "host and hosts",
      `<rule>\n<host>198.18.2.2</host>\n<hosts>\n<host>198.18.2.3</host>\n</hosts>\n<keyfile>/k</keyfile>\n</rule>`,
      `7: <rule> 1 has both <host> and <hosts>: use one`,
    ],
    [
      "empty hosts",
      `<rule>\n<hosts>\n</hosts>\n<keyfile>/k</keyfile>\n</rule>`,
      `6: <hosts> in <rule> 1 lists no <host>`,
    ],
    [
      "bad host in hosts",
      `<rule>\n<hosts>\n<host>198.18.2.2:99999</host>\n</hosts>\n<keyfile>/k</keyfile>\n</rule>`,
      `7: <host> in <hosts> of <rule> 1 port must be an integer 1-65535, got "99999" in "198.18.2.2:99999"`,
    ],
    [
      "no keyfile",
      `<rule>\n<host>198.18.2.2</host>\n</rule>`,
      `5: <rule> 1 needs a <keyfile> to log in to the internal server`,
    ],
    [
      "relative keyfile",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>id_rsa</keyfile>\n</rule>`,
      `7: <keyfile> must be an absolute path, got "id_rsa"`,
    ],
    [
      "other variable",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/home/$(name)/k</keyfile>\n</rule>`,
      `7: <keyfile> may only use the $(user) variable, got "/home/$(name)/k"`,
    ],
    [
      "dotdot keyfile",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/home/$(user)/../root/k</keyfile>\n</rule>`,
      `7: <keyfile> must not contain "..", got "/home/$(user)/../root/k"`,
    ],
    [
      "bad squash user",
      `<rule>\n<host>198.18.2.2</host>\n<squash_user>../root</squash_user>\n<keyfile>/k</keyfile>\n</rule>`,
      `7: <squash_user> must be a login name (it holds / or ..), got "../root"`,
    ],
    [
      "balancing method",
      `<rule>\n<balancing>least_conn</balancing>\n<hosts>\n<host>198.18.2.2</host>\n</hosts>\n<keyfile>/k</keyfile>\n</rule>`,
      `6: <balancing> must be round_robin (the only method), got "least_conn"`,
    ],
    [
      "src filtering value",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<src_port_filtering>no</src_port_filtering>\n</rule>`,
      `8: <src_port_filtering> must be true or false, got "no"`,
    ],
    [
      "proxy port",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<proxy_port>abc</proxy_port>\n</rule>`,
      `8: <proxy_port> must be an integer 0-65535, got "abc"`,
    ],
    [
      "udp port span room",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<proxy_port>0</proxy_port>\n<udp_port>65530</udp_port>\n<udp_port_reuse>false</udp_port_reuse>\n</rule>`,
      `9: <rule> 1: 10 UDP ports from 65530 run past 65535`,
    ],
    [
      "udp port count",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<udp_port_count>0</udp_port_count>\n</rule>`,
      `8: <udp_port_count> must be a whole number 1-1000, got "0"`,
    ],
    [
      "command metachar",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<allowed_commands>\n<command>scp;sh</command>\n</allowed_commands>\n</rule>`,
      `9: <command> in <allowed_commands> must be plain words without shell metacharacters, got "scp;sh"`,
    ],
    [
      "command path",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<allowed_commands>\n<command>/bin/sh</command>\n</allowed_commands>\n</rule>`,
      `9: <command> in <allowed_commands> must start with a program name without a path, got "/bin/sh"`,
    ],
    [
      "bad subsystem",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<allowed_commands>\n<command>subsystem:</command>\n</allowed_commands>\n</rule>`,
      `9: <command> in <allowed_commands> must name a subsystem (subsystem:NAME), got "subsystem:"`,
    ],
    [
      "timeout",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<connect_timeout>0</connect_timeout>\n</rule>`,
      `8: <connect_timeout> must be a whole number of seconds 1-300, got "0"`,
    ],
    [
      "udp port",
      `<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<udp_port>0</udp_port>\n</rule>`,
      `8: <udp_port> must be an integer 1-65535, got "0"`,
    ],
  ];
  for (const [name, rule, expected] of cases) {
    await t.step(name, () => assertEquals(errorsOf(parseInline(withRule(rule))), [expected]));
  }
  await t.step("no rules at all", () => {
    assertEquals(errorsOf(parseInline(withRule(""))), [
      "4: <rproxy> is enabled but has no <rule>: every session would be refused",
    ]);
  });
});

Deno.test("validateConfig() warns where a setting cannot work with a real ascp", () => {
  const rule = (options: string) =>
    `<rule>\n<hosts>\n<host>198.18.2.2</host>\n<host>198.18.2.3</host>\n</hosts>\n<keyfile>/k</keyfile>\n${options}\n</rule>`;
  assertEquals(warningsOf(parseInline(withRule(rule("<proxy_port>0</proxy_port>")))), []);
  assertEquals(warningsOf(parseInline(withRule(rule("<proxy_port>34000</proxy_port>")))), [
    "11: <rule> 1: <proxy_port> 34000 differs from the internal server's <udp_port> 33001; a real ascp sends UDP to the port the server announces (33001), so set <proxy_port>0</proxy_port> unless clients are told the proxy port some other way",
  ]);
  assertEquals(
    warningsOf(parseInline(withRule(rule("<src_port_filtering>false</src_port_filtering>")))),
    [
      "11: <rule> 1: with <src_port_filtering> false, UDP of one client cannot be told apart between its <hosts>: while a session of a client is forwarded to one host, its sessions to another host get no UDP forwarding",
    ],
  );
});

Deno.test("validateConfig() collects every problem, not just the first", () => {
  const report = parseInline(
    `<server>\n<http_port>x</http_port>\n<proxy>\n<port_range_low>y</port_range_low>\n</proxy>\n<rproxy>\n<log_level>9</log_level>\n</rproxy>\n</server>`,
  );
  assertEquals(errorsOf(report).map((e) => e.split(":")[0]), ["2", "4", "7"]);
});

Deno.test("validateConfig() warns about unknown and misplaced tags but still loads", () => {
  const report = parseInline(
    `<CONF version="2">\n<default/>\n<server>\n<rproxy>\n<dnat_backend>nftables</dnat_backend>\n<enabled>true</enabled>\n<colour>blue</colour>\n<rules>\n${
      GOOD_RULE.replace("<rule>", `<rule host_ip="198.18.0.1" port="1">`)
    }\n</rules>\n</rproxy>\n</server>\n</CONF>`,
  );
  assertOk(report.config);
  assertEquals(warningsOf(report), [
    "2: <default> in <CONF> is not used by xferproxy (ignored): it configures an Aspera transfer server; set it in the internal server's aspera.conf",
    "5: unknown tag <dnat_backend> in <rproxy> (ignored); it belongs in <server>",
    "7: unknown tag <colour> in <rproxy> (ignored)",
    "9: <rule> 1 has unknown attribute port (ignored); use host_ip or host_domain",
  ]);
  assertEquals(report.config.server.dnatBackend, "iptables");
});

Deno.test("validateConfig() warns about rules that can never match", () => {
  const report = parseInline(withRule(`${GOOD_RULE}\n${GOOD_RULE}`));
  assertOk(report.config);
  assertEquals(warningsOf(report), [
    "9: <rule> 2 can never match: <rule> 1 (line 5) matches first",
  ]);
});

Deno.test("validateConfig() warns about rules shadowed by a rule with fewer attributes", async (t) => {
  const rule = (attrs: string) =>
    `<rule ${attrs}>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n</rule>`;
  const cases: Array<[string, string, string[]]> = [
    ["same address, the earlier without a name", `host_ip="198.18.1.1"`, [
      `9: <rule> 2 can never match: <rule> 1 (line 5) matches first`,
    ]],
    ["the earlier names the host without a port", `host_domain="a.example"`, [
      `9: <rule> 2 can never match: <rule> 1 (line 5) matches first`,
    ]],
    ["the earlier names another port", `host_domain="a.example:22"`, []],
    ["the earlier names another host", `host_ip="198.18.1.1" host_domain="b.example"`, []],
  ];
  for (const [name, first, warnings] of cases) {
    await t.step(name, () => {
      const later = `host_ip="198.18.1.1" host_domain="a.example:33001"`;
      assertEquals(warningsOf(parseInline(withRule(`${rule(first)}\n${rule(later)}`))), warnings);
    });
  }
});

Deno.test("validateConfig() warns when only host_domain, the client's word, separates accounts", async (t) => {
  const rule = (attrs: string, body: string) =>
    `<rule ${attrs}>\n${body}\n<keyfile>/k/$(user)</keyfile>\n</rule>`;
  const squash = (user: string) => `<host>198.18.2.2</host><squash_user>${user}</squash_user>`;
  const warning =
    `9: <rule> 2 and <rule> 1 (line 5) differ only by host_domain but use different internal accounts or servers: host_domain is the name the client sends (XFERPROXY_HOST), so every client that reaches one rule can choose the other`;
  const cases: Array<[string, string, string, string[]]> = [
    [
      "two partners' squash accounts told apart by name",
      rule(`host_domain="acme.example"`, squash("acme")),
      rule(`host_domain="globex.example"`, squash("globex")),
      [warning],
    ],
    [
      "on the same proxy address",
      rule(`host_ip="198.18.1.1" host_domain="acme.example"`, squash("acme")),
      rule(`host_ip="198.18.1.1"`, squash("globex")),
      [warning],
    ],
    [
      "the same account on different servers",
      rule(`host_domain="a.example"`, `<host>198.18.2.2</host>`),
      rule(`host_domain="b.example"`, `<host>198.18.2.3</host>`),
      [warning],
    ],
    [
      "names that lead to the same account",
      rule(`host_domain="a.example"`, squash("xfer")),
      rule(`host_domain="b.example"`, squash("xfer")),
      [],
    ],
    [
      "told apart by proxy address",
      rule(`host_ip="198.18.1.1" host_domain="acme.example"`, squash("acme")),
      rule(`host_ip="198.18.1.17" host_domain="globex.example"`, squash("globex")),
      [],
    ],
  ];
  for (const [name, first, second, warnings] of cases) {
    await t.step(name, () => {
      const report = parseInline(withRule(`${first}\n${second}`));
      assertOk(report.config);
      assertEquals(warningsOf(report), warnings);
      for (const p of report.problems) {
        assertEquals(p.tag, "host_domain");
        assertMatch(p.fix ?? "", /never separate partners by host_domain/);
      }
    });
  }
});

Deno.test("validateConfig() reads the extensions and inherits rule defaults from <rproxy>", () => {
  const report = parseInline(
    `<CONF version="2"><server>
<state_directory>/run/xp</state_directory>
<dnat_backend>nftables</dnat_backend>
<rproxy>
<enabled>true</enabled>
<known_hosts>/etc/xp/known_hosts</known_hosts>
<connect_timeout>3</connect_timeout>
<allowed_commands><command>*</command></allowed_commands>
<rules>
<rule host_domain="Files.Example.com:33001" host_ip="2001:db8::/64">
<proxy_port>0</proxy_port>
<host>[2001:db8::2]:2222</host>
<keyfile>/k/$(user)</keyfile>
<udp_port>33002</udp_port>
<udp_port_reuse>false</udp_port_reuse>
</rule>
<rule>
<host>198.18.2.2</host>
<keyfile>/k</keyfile>
<connect_timeout>7</connect_timeout>
<allowed_commands><command>scp</command><command>subsystem:sftp</command></allowed_commands>
</rule>
</rules>
</rproxy>
<proxy><users_file>/etc/xp/users.json</users_file><cert_file>/c.pem</cert_file><key_file>/k.pem</key_file></proxy>
</server></CONF>`,
  );
  assertEquals(report.problems, []);
  const server = report.config!.server;
  assertEquals([server.stateDirectory, server.dnatBackend], ["/run/xp", "nftables"]);
  assertEquals(server.rproxy.knownHosts, "/etc/xp/known_hosts");
  const [first, second] = server.rproxy.rules;
  assertEquals(first!.hostDomain, { name: "files.example.com", port: 33001 });
  assertEquals(first!.hostIp?.text, "2001:db8::/64");
  assertEquals(first!.proxyPort, 0);
  assertEquals(first!.upstreams[0]!.ip.text, "2001:db8::2");
  assertEquals(first!.upstreams[0]!.port, 2222);
  assertEquals([first!.udpPort, first!.udpPortReuse, first!.connectTimeout], [33002, false, 3]);
  assertEquals(first!.allowedCommands, [{ kind: "any" }]);
  assertEquals(second!.connectTimeout, 7);
  assertEquals(second!.allowedCommands, [{ kind: "exec", argv: ["scp"] }, {
    kind: "subsystem",
    name: "sftp",
  }]);
  assertEquals(server.proxy.usersFile, "/etc/xp/users.json");
  assertEquals([server.proxy.certFile, server.proxy.keyFile], ["/c.pem", "/k.pem"]);
});

Deno.test("validateConfig() does not demand hosts and keys while the reverse proxy is off", () => {
  const report = parseInline(
    `<server><rproxy><rules><rule><host></host></rule></rules></rproxy></server>`,
  );
  assertEquals(report.problems, []);
  assertOk(report.config);
});

Deno.test("validateConfig() treats a <CONF> without <server> as all defaults, with a warning", () => {
  const report = parseInline(`<CONF version="2"></CONF>`);
  assertEquals(warningsOf(report), [
    "1: <CONF> has no <server> section: every option takes its default",
  ]);
  assertEquals(report.config!.server.httpPort, 9091);
});

Deno.test("validateConfig() decodes entities and CDATA in values", () => {
  const report = parseInline(
    `<server><rproxy><log_directory><![CDATA[/var/log/x&y]]></log_directory><known_hosts>/etc/a&amp;b</known_hosts></rproxy></server>`,
  );
  assertEquals(report.config!.server.rproxy.logDirectory, "/var/log/x&y");
  assertEquals(report.config!.server.rproxy.knownHosts, "/etc/a&b");
});

Deno.test("validateConfig() reads the documents' other spellings and says where docroot tags belong", () => {
  const report = parseInline(
    `<CONF version="2">\n<file_system><access><paths><path><absolute>/sandbox</absolute></path></paths></access></file_system>\n<server>\n<rproxy>\n<enabled>true</enabled>\n<rules>\n${
      GOOD_RULE.replace("</rule>", "<source_port_filtering>false</source_port_filtering>\n</rule>")
    }\n</rules>\n</rproxy>\n<absolute>/x</absolute>\n</server>\n</CONF>`,
  );
  assertOk(report.config);
  assertEquals(report.config.server.rproxy.rules[0]?.srcPortFiltering, false);
  const docroot =
    "it sets an Aspera server's docroot; xferproxy serves no files: set it in the internal server's aspera.conf";
  assertEquals(warningsOf(report), [
    `2: <file_system> in <CONF> is not used by xferproxy (ignored): ${docroot}`,
    "10: <source_port_filtering> is read as <src_port_filtering>, the spelling of the configuration reference",
    `14: unknown tag <absolute> in <server> (ignored): ${docroot}`,
  ]);
});

Deno.test("validateConfig() refuses both spellings of one option in one rule", () => {
  const report = parseInline(
    withRule(
      GOOD_RULE.replace(
        "</rule>",
        "<src_port_filtering>true</src_port_filtering><source_port_filtering>false</source_port_filtering></rule>",
      ),
    ),
  );
  assertEquals(report.config, undefined);
  assertMatch(errorsOf(report).join("\n"), /<src_port_filtering> appears twice in <rule>/);
});

Deno.test("validateConfig() hints where any misplaced option belongs, derived from the spec", () => {
  const report = parseInline(
    `<server>\n<connect_timeout>5</connect_timeout>\n<enabled>true</enabled>\n<rproxy>\n<max_sessions_per_user>3</max_sessions_per_user>\n<udp_port_count>4</udp_port_count>\n</rproxy>\n</server>`,
  );
  assertEquals(warningsOf(report), [
    "2: unknown tag <connect_timeout> in <server> (ignored); it belongs in <rule> or <rproxy>",
    // In <proxy> and in <rproxy> alike: no guess.
    "3: unknown tag <enabled> in <server> (ignored)",
    "5: unknown tag <max_sessions_per_user> in <rproxy> (ignored); it belongs in <proxy>",
    "6: unknown tag <udp_port_count> in <rproxy> (ignored); it belongs in <rule>",
  ]);
});

Deno.test("validateConfig() warns where the forward port range overlaps a rule's UDP ports", async (t) => {
  /** Both proxies (each on unless told), `proxy` and `rule` on lines 8 and 13. */
  const config = (proxy: string, rule: string, on = { forward: true, reverse: true }) =>
    `<server>\n<enable_https>true</enable_https>\n<proxy>\n<enabled>${on.forward}</enabled>\n<authentication>true</authentication>\n<cert_file>/c</cert_file>\n<key_file>/k</key_file>\n${proxy}\n</proxy>\n<rproxy>\n<enabled>${on.reverse}</enabled>\n<rules>\n${rule}\n</rules>\n</rproxy>\n</server>`;
  const range = (low: number, high: number, bind = "198.18.0.1") =>
    `<bind_ip_address>${bind}</bind_ip_address><port_range_low>${low}</port_range_low><port_range_high>${high}</port_range_high>`;
  const rule = (hostIp: string, ports = "<udp_port_reuse>false</udp_port_reuse>") =>
    `<rule${
      hostIp ? ` host_ip="${hostIp}"` : ""
    }><host>198.18.2.2</host><keyfile>/k</keyfile>${ports}</rule>`;
  const warning = (ports: string, where: string, line = 8, index = 1, ruleLine = 13) =>
    `${line}: the forward proxy's port range ${ports} of <rule> ${index} (line ${ruleLine}) on ${where}: a forward session can be given a port where a reverse session of the same client address receives FASP, and which of the two its UDP reaches then depends on rule order`;
  const cases: Array<[string, string, string[]]> = [
    [
      "overlapping on one address",
      config(range(30000, 33001), rule("198.18.0.1")),
      [warning("30000-33001 overlaps UDP ports 33001-33010", "proxy address 198.18.0.1")],
    ],
    [
      "adjacent",
      config(range(30000, 33000), rule("198.18.0.1")),
      [],
    ],
    [
      "on different addresses",
      config(range(30000, 40000), rule("198.18.0.2")),
      [],
    ],
    [
      "the rule unbound",
      config(range(30000, 40000), rule("")),
      [warning("30000-40000 overlaps UDP ports 33001-33010", "proxy address 198.18.0.1")],
    ],
    [
      "both unbound, one port",
      config(range(30000, 40000, "0.0.0.0"), rule("", "")),
      [warning("30000-40000 overlaps UDP port 33001", "every proxy address")],
    ],
    [
      "the forward proxy unbound, the rule on a network",
      config(range(30000, 40000, "0.0.0.0"), rule("198.18.0.0/24")),
      [warning("30000-40000 overlaps UDP ports 33001-33010", "proxy addresses 198.18.0.0/24")],
    ],
    [
      "IPv6",
      config(range(33005, 33005, "2001:db8::1"), rule("2001:db8::/64")),
      [warning("33005-33005 overlaps UDP ports 33001-33010", "proxy address 2001:db8::1")],
    ],
    [
      "the default range, at <proxy>",
      config("", rule("", "<proxy_port>0</proxy_port><udp_port>5000</udp_port>")),
      [warning("5000-10000 overlaps UDP port 5000", "every proxy address", 3)],
    ],
    [
      "the forward proxy off",
      config(range(30000, 40000), rule(""), { forward: false, reverse: true }),
      [],
    ],
    [
      "the reverse proxy off",
      config(range(30000, 40000), rule(""), { forward: true, reverse: false }),
      [],
    ],
  ];
  for (const [name, xml, expected] of cases) {
    await t.step(name, () => {
      const report = parseInline(xml);
      assertOk(report.config, "an overlap is a warning: the config still loads");
      assertEquals(warningsOf(report), expected);
      for (const p of report.problems) {
        assertEquals(p.tag, "port_range");
      }
    });
  }
  await t.step("each overlapping rule, with its own fix", () => {
    const report = parseInline(
      config(
        range(30000, 40000),
        `${rule("198.18.0.1")}\n${rule("198.18.0.9")}\n${
          rule("", "<proxy_port>34000</proxy_port>")
        }`,
      ),
    );
    assertEquals(warningsOf(report), [
      warning("30000-40000 overlaps UDP ports 33001-33010", "proxy address 198.18.0.1"),
      warning("30000-40000 overlaps UDP port 34000", "proxy address 198.18.0.1", 8, 3, 15),
      "15: <rule> 3: <proxy_port> 34000 differs from the internal server's <udp_port> 33001; a real ascp sends UDP to the port the server announces (33001), so set <proxy_port>0</proxy_port> unless clients are told the proxy port some other way",
    ]);
    assertEquals(report.problems.filter((p) => p.tag === "port_range").map((p) => p.fix), [
      "move <port_range_low>-<port_range_high> outside 33001-33010, or bind the forward proxy (<bind_ip_address>) and <rule> 1 (host_ip) to different addresses",
      "move <port_range_low>-<port_range_high> outside 34000, or bind the forward proxy (<bind_ip_address>) and <rule> 3 (host_ip) to different addresses",
    ]);
  });
});
