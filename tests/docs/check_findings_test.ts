/**
 * Every finding `check` can report has its row in docs/check.md, and every
 * row names a finding the code reports: the table is the reference users
 * read, so an id added, renamed or dropped must change it too.
 */
import { assertEquals } from "../_assert.ts";
import { SYSTEM_CHECKS } from "../../src/check/system.ts";
import { configFindings } from "../../src/check/audit.ts";
import { parseConfigText } from "../../src/config/mod.ts";

const ROOT = new URL("../../", import.meta.url);
const FINDING = /finding\.(?:error|warning|info)\(\s*[`"]([a-z_.0-9]+)(\$\{)?/g;

/** The ids the code reports, and the prefixes of those it builds (`system.tool.${name}`). */
async function codeIds(): Promise<{ ids: Set<string>; prefixes: Set<string> }> {
  const ids = new Set<string>();
  const prefixes = new Set<string>();
  for await (const entry of Deno.readDir(new URL("src/check/", ROOT))) {
    if (!entry.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(new URL(`src/check/${entry.name}`, ROOT));
    for (const m of text.matchAll(FINDING)) (m[2] ? prefixes : ids).add(m[1] as string);
  }
  return { ids, prefixes };
}

/** The ids docs/check.md's finding tables list (its first column). */
async function documentedIds(): Promise<Set<string>> {
  const text = await Deno.readTextFile(new URL("docs/check.md", ROOT));
  // The commands table lists `check` itself, not a finding.
  return new Set(
    [...text.matchAll(/^\| `([a-z_.0-9]+)`/gm)].map((m) => m[1] as string).filter((id) =>
      id.includes(".")
    ),
  );
}

Deno.test("docs/check.md lists exactly the findings the code reports", async () => {
  const { ids, prefixes } = await codeIds();
  const documented = await documentedIds();
  assertEquals(ids.size > 30, true, `only ${ids.size} finding ids found: the pattern is stale`);
  assertEquals([...ids].filter((id) => !documented.has(id)).sort(), [], "undocumented findings");
  const built = (id: string) => [...prefixes].some((p) => id.startsWith(p));
  assertEquals(
    [...documented].filter((id) => !ids.has(id) && !built(id)).sort(),
    [],
    "documented findings the code never reports",
  );
});

Deno.test("docs/check.md lists every finding id the system checks declare", async () => {
  const documented = [...await documentedIds()];
  const declared = SYSTEM_CHECKS.flatMap((c) => c.ids);
  const missing = declared.filter((id) =>
    id.endsWith(".*")
      ? !documented.some((d) => d.startsWith(id.slice(0, -1)))
      : !documented.includes(id)
  );
  assertEquals(missing, []);
});

/**
 * Configs that each raise a config finding with its own row (`config.<tag>` covers the rest):
 * the row must be there for the id the code builds.
 */
const NAMED_CONFIG_FINDINGS: Record<string, string> = {
  "config.host_domain": `<server><rproxy><enabled>true</enabled><rules>
<rule host_domain="a.example"><host>198.18.2.2</host><squash_user>a</squash_user><keyfile>/k</keyfile></rule>
<rule host_domain="b.example"><host>198.18.2.2</host><squash_user>b</squash_user><keyfile>/k</keyfile></rule>
</rules></rproxy></server>`,
  "config.port_range": `<server><enable_https>true</enable_https>
<proxy><enabled>true</enabled><authentication>true</authentication><cert_file>/c</cert_file><key_file>/k</key_file>
<port_range_low>33001</port_range_low><port_range_high>33001</port_range_high></proxy>
<rproxy><enabled>true</enabled><rules><rule><host>198.18.2.2</host><keyfile>/k</keyfile></rule></rules></rproxy>
</server>`,
};

Deno.test("docs/check.md lists the config findings that have their own row, by the id the code builds", async () => {
  const documented = await documentedIds();
  for (const [id, xml] of Object.entries(NAMED_CONFIG_FINDINGS)) {
    const ids = configFindings(parseConfigText(xml, "a.conf")).map((f) => f.id);
    assertEquals(ids, [id, "config.valid"], `the sample for ${id} raises something else`);
    assertEquals(documented.has(id), true, `docs/check.md has no row for ${id}`);
  }
});
