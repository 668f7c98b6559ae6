/**
 * Every finding `check` can report has its row in docs/check.md, and every
 * row names a finding the code reports: the table is the reference users
 * read, so an id added, renamed or dropped must change it too.
 */
import { assertEquals } from "../_assert.ts";
import { SYSTEM_CHECKS } from "../../src/check/system.ts";

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
