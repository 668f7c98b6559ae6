import { assertEquals } from "../_assert.ts";
import {
  parseRegistry,
  type RegistryEntry,
  serializeRegistry,
  withEntry,
  withoutSessions,
} from "../../src/dnat/registry.ts";
import { parseIp } from "../../src/net/ip.ts";

function entry(
  id: string,
  extra: Partial<RegistryEntry["session"]> = {},
  learned = true,
): RegistryEntry {
  return {
    session: {
      id,
      owner: { pid: 77, start: 1_800_000_000 },
      client: parseIp("2001:db8::2")!,
      ...(learned ? { clientPort: 40000 } : {}),
      proxy: parseIp("2001:db8::1")!,
      proxyPort: 33001,
      portCount: 1,
      server: parseIp("2001:db8:1::2")!,
      serverPort: 33001,
      ...extra,
    },
    uid: 1001,
    rule: 2,
    filtering: true,
    created: 1_800_000_000_000,
  };
}

Deno.test("the registry survives a round trip through its file", () => {
  const registry = { entries: [entry("a"), entry("b", { portCount: 10 }, false)] };
  const { registry: back, dropped } = parseRegistry(serializeRegistry(registry));
  assertEquals(dropped, 0);
  assertEquals(serializeRegistry(back), serializeRegistry(registry));
  assertEquals(back.entries[1]?.session.clientPort, undefined);
});

Deno.test("entries that do not parse are dropped and counted, never fatal", () => {
  const good = JSON.parse(serializeRegistry({ entries: [entry("a")] })).entries[0];
  const bad = (index: number, value: unknown) =>
    good.map((v: unknown, i: number) => i === index ? value : v);
  const text = JSON.stringify({
    version: 2,
    entries: [good, bad(7, "not an ip"), bad(10, 70000), bad(3, -1), good.slice(1), null],
  });
  const { registry, dropped } = parseRegistry(text);
  assertEquals([registry.entries.length, dropped], [1, 5]);
  assertEquals(parseRegistry("{not json").dropped, 1);
  assertEquals(parseRegistry("[]").registry.entries, []);
});

Deno.test("withEntry() replaces by session id; withoutSessions() removes", () => {
  const registry = { entries: [entry("a"), entry("b")] };
  const narrowed = withEntry(registry, entry("a", { clientPort: 41000 }));
  assertEquals(narrowed.entries.map((e) => [e.session.id, e.session.clientPort]), [
    ["b", 40000],
    ["a", 41000],
  ]);
  assertEquals(withoutSessions(narrowed, new Set(["a"])).entries.map((e) => e.session.id), ["b"]);
});
