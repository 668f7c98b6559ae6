import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { PROXY, RPROXY, RULE, SERVER } from "../../src/config/spec.ts";
import { formatOptionSpec, parseConfigText } from "../../src/config/mod.ts";
import { parseXml } from "../../src/config/raw.ts";

const ALL = [SERVER, PROXY, RPROXY, RULE].flatMap((section) => Object.values(section));

Deno.test("every default in the spec table parses with its own parser", () => {
  for (const spec of ALL) {
    for (const text of spec.item ? spec.default.split(",") : [spec.default]) {
      const parsed = spec.parse(text);
      assertOk(parsed.ok, `default of <${spec.tag}> "${text}" does not parse`);
    }
  }
});

Deno.test("formatOptionSpec() prints a valid config holding every option at its default", () => {
  const text = formatOptionSpec("9.9.9");
  const report = parseConfigText(text, "spec.xml");
  assertEquals(report.problems.filter((p) => p.severity === "error"), []);
  const tags = new Set<string>();
  const walk = (el: ReturnType<typeof parseXml>) => {
    tags.add(el.name);
    el.children.forEach(walk);
  };
  walk(parseXml(text));
  for (const spec of ALL) {
    assertOk(tags.has(spec.tag), `<${spec.tag}> missing from the spec output`);
  }
  for (const spec of ALL) assertIncludes(text, `<!-- ${spec.tag}: `);
  assertIncludes(text, "xferproxy 9.9.9");
});

Deno.test("the defaults of a file with only <CONF/> equal the spec table", () => {
  const { server } = parseConfigText("<CONF/>", "a.conf").config!;
  assertEquals([server.httpPort, server.httpsPort, server.enableHttp, server.enableHttps], [
    9091,
    9092,
    false,
    false,
  ]);
  assertEquals([server.stateDirectory, server.dnatBackend], ["/var/lib/xferproxy", "iptables"]);
  assertEquals([server.proxy.portRangeLow, server.proxy.portRangeHigh], [5000, 10000]);
  assertEquals(server.proxy.usersFile, "/etc/xferproxy/users.json");
  assertEquals([server.rproxy.enabled, server.rproxy.logLevel, server.rproxy.rules], [
    false,
    0,
    [],
  ]);
});

Deno.test("docs/configuration.md documents every option with its default", () => {
  const doc = Deno.readTextFileSync(new URL("../../docs/configuration.md", import.meta.url));
  for (const spec of ALL) {
    const row = doc.split("\n").find((line) => line.startsWith(`| \`<${spec.tag}>\``));
    assertOk(row, `docs/configuration.md has no table row for <${spec.tag}>`);
    const shown = spec.default === "" ? "(blank)" : `\`${spec.default.replaceAll(",", ", ")}\``;
    assertIncludes(row, shown, `docs row for <${spec.tag}> does not show its default ${shown}`);
  }
});
