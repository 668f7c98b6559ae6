/**
 * The import graph of src/ and main.ts has no cycle, type-only imports and
 * lazy `import()`s included: a cycle hides which module a change reaches,
 * and the lazy loading of each mode's actions depends on the direction.
 */
import { assertEquals } from "../_assert.ts";

const ROOT = new URL("../../", import.meta.url);

async function sources(dir: URL, out: string[] = []): Promise<string[]> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) await sources(url, out);
    else if (entry.name.endsWith(".ts")) out.push(url.pathname);
  }
  return out;
}

/** Relative specifiers a module imports, statically, as types, or lazily. */
export function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
    found.push(m[1] as string);
  }
  return found;
}

/** One cycle of `graph`, as the path that closes it, or undefined. */
export function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === "done") return undefined;
    if (state.get(node) === "open") return [...path.slice(path.indexOf(node)), node];
    state.set(node, "open");
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

Deno.test("findCycle() finds a cycle through a type-only edge and none in a tree", () => {
  const typeCycle = importsOf(
    'import type { A } from "./b.ts";\nconst m = await import("./c.ts");',
  );
  assertEquals(typeCycle, ["./b.ts", "./c.ts"]);
  const cyclic = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]]);
  assertEquals(findCycle(cyclic), ["a", "b", "c", "a"]);
  assertEquals(findCycle(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]])), undefined);
});

Deno.test("src/ and main.ts import each other without a cycle", async () => {
  const files = [
    ...await sources(new URL("src/", ROOT)),
    new URL("main.ts", ROOT).pathname,
  ];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const base = new URL(`file://${file}`);
    graph.set(
      file,
      importsOf(await Deno.readTextFile(file)).map((spec) => new URL(spec, base).pathname),
    );
  }
  const cycle = findCycle(graph);
  const root = ROOT.pathname;
  assertEquals(cycle?.map((f) => f.slice(root.length)), undefined);
});
