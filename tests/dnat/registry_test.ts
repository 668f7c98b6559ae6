import { assertEquals } from "../_assert.ts";
import {
  forwardedSessions,
  parseRegistry,
  type RegistryEntry,
  registryReader,
  serializeRegistry,
  withEntry,
  withoutSessions,
} from "../../src/dnat/registry.ts";
import type { DnatSession } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";

const OWNER = { pid: 77, start: 1_800_000_000_120 };

function entry(
  id: string,
  extra: Partial<DnatSession> = {},
  learned = true,
): RegistryEntry {
  return {
    id,
    owner: OWNER,
    uid: 1001,
    rule: 2,
    created: 1_800_000_000_000,
    user: "Alice.B@corp",
    upstream: "[2001:db8:1::2]:22",
    ssh: {
      client: { ip: parseIp("2001:db8::2")!, port: 50123 },
      proxy: { ip: parseIp("2001:db8::1")!, port: 22 },
    },
    forwarding: {
      filtering: true,
      session: {
        id,
        owner: OWNER,
        client: parseIp("2001:db8::2")!,
        ...(learned ? { clientPort: 40000 } : {}),
        proxy: parseIp("2001:db8::1")!,
        proxyPort: 33001,
        portCount: 1,
        server: parseIp("2001:db8:1::2")!,
        serverPort: 33001,
        ...extra,
      },
    },
  };
}

/** A session registered for its closing line only (scp, sftp). */
function plain(id: string): RegistryEntry {
  const { forwarding: _, ...rest } = entry(id);
  return rest;
}

Deno.test("the registry survives a round trip through its file", () => {
  const registry = {
    entries: [entry("a"), entry("b", { portCount: 10, tcpServerPort: 22 }, false), plain("c")],
  };
  const { registry: back, dropped } = parseRegistry(serializeRegistry(registry));
  assertEquals(dropped, 0);
  assertEquals(serializeRegistry(back), serializeRegistry(registry));
  assertEquals(back.entries[1]?.forwarding?.session.clientPort, undefined);
  assertEquals(back.entries[1]?.forwarding?.session.tcpServerPort, 22);
  assertEquals(back.entries[2]?.forwarding, undefined);
  assertEquals(back.entries[2]?.ssh?.client.port, 50123);
  assertEquals(forwardedSessions(back).map((s) => s.id), ["a", "b"]);
});

Deno.test("entries that do not parse are dropped and counted, never fatal", () => {
  const good = JSON.parse(serializeRegistry({ entries: [entry("a")] })).entries[0];
  const bad = (index: number, value: unknown) =>
    good.map((v: unknown, i: number) => i === index ? value : v);
  const badForwarding = (index: number, value: unknown) =>
    bad(9, good[9].map((v: unknown, i: number) => i === index ? value : v));
  const text = JSON.stringify({
    version: 3,
    entries: [
      good,
      badForwarding(1, "not an ip"),
      badForwarding(4, 70000),
      bad(3, -1),
      bad(8, ["1.2.3.4; rm", 1, "1.2.3.5", 22]),
      good.slice(1),
      null,
    ],
  });
  const { registry, dropped } = parseRegistry(text);
  assertEquals([registry.entries.length, dropped], [1, 6]);
  assertEquals(parseRegistry("{not json").dropped, 1);
  assertEquals(parseRegistry("[]").registry.entries, []);
  assertEquals(parseRegistry(JSON.stringify({ version: 9, entries: [good] })).dropped, 1);
});

Deno.test("a registry an earlier version wrote keeps its live sessions, their starts in seconds", () => {
  // Version 2: every entry forwarded UDP; owner starts were whole seconds from ps.
  const v2 = JSON.stringify({
    version: 2,
    entries: [[
      "3a9fd819-59c3-42bc-b0a2-d26304a1eb84",
      4242,
      1_800_000_000,
      1001,
      1,
      1,
      1_800_000_000_500,
      "198.18.1.2",
      40000,
      "198.18.1.1",
      33001,
      1,
      "198.18.2.2",
      33001,
    ]],
  });
  const { registry, dropped } = parseRegistry(v2);
  assertEquals(dropped, 0);
  const [e] = registry.entries;
  assertEquals(e?.owner, { pid: 4242, start: 1_800_000_000_000, coarse: true });
  assertEquals(e?.forwarding?.session.clientPort, 40000);
  assertEquals(e?.forwarding?.filtering, true);
  // Written back as version 3, the coarse start stays coarse.
  assertEquals(
    parseRegistry(serializeRegistry(registry)).registry.entries[0]?.owner,
    { pid: 4242, start: 1_800_000_000_000, coarse: true },
  );
});

Deno.test("withEntry() replaces by session id; withoutSessions() removes", () => {
  const registry = { entries: [entry("a"), entry("b")] };
  const narrowed = withEntry(registry, entry("a", { clientPort: 41000 }));
  assertEquals(
    narrowed.entries.map((e) => [e.id, e.forwarding?.session.clientPort]),
    [["b", 40000], ["a", 41000]],
  );
  assertEquals(withoutSessions(narrowed, new Set(["a"])).entries.map((e) => e.id), ["b"]);
});

Deno.test("an entry being removed keeps its record through the file but no longer asks for rules", () => {
  const removing = { ...entry("d"), removing: 1_800_000_000_500 };
  const registry = { entries: [entry("a"), removing] };
  const { registry: back, dropped } = parseRegistry(serializeRegistry(registry));
  assertEquals(dropped, 0);
  assertEquals(back.entries.map((e) => [e.id, e.removing]), [["a", undefined], [
    "d",
    1_800_000_000_500,
  ]]);
  assertEquals(forwardedSessions(back).map((s) => s.id), ["a"]);
  const bad = serializeRegistry(registry).replace("1800000000500", '"soon"');
  assertEquals(parseRegistry(bad).dropped, 1);
});

Deno.test("registryReader() gives back the same registry while the stored bytes stay the same", () => {
  const read = registryReader();
  const bytes = (registry: { entries: RegistryEntry[] }) =>
    new TextEncoder().encode(serializeRegistry(registry));
  const first = read(bytes({ entries: [entry("a"), plain("b")] }));
  assertEquals(first.registry.entries.map((e) => e.id), ["a", "b"]);
  // Read again (another buffer, the same bytes): the very same objects, not a thousand new ones.
  const again = read(bytes({ entries: [entry("a"), plain("b")] }));
  assertEquals(again === first && again.registry === first.registry, true);
  // Any change is parsed: one byte differs (another id, the same length), or entries are added.
  const changed = read(bytes({ entries: [entry("c"), plain("b")] }));
  assertEquals(changed.registry.entries.map((e) => e.id), ["c", "b"]);
  assertEquals(
    read(bytes({ entries: [entry("c"), plain("b"), plain("d")] })).registry.entries
      .map((e) => e.id),
    ["c", "b", "d"],
  );
  // One buffer the caller reads each registry into: what it held before is not what is compared.
  const buffer = bytes({ entries: [entry("e")] });
  assertEquals(read(buffer).registry.entries.map((e) => e.id), ["e"]);
  buffer.set(bytes({ entries: [entry("f")] }));
  assertEquals(read(buffer).registry.entries.map((e) => e.id), ["f"]);
  // What does not parse still counts, every time it is read.
  const broken = new TextEncoder().encode("{not json");
  assertEquals([read(broken).dropped, read(broken).dropped], [1, 1]);
  // A byte-order mark still keeps the file from parsing, as when it was read as text.
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...bytes({ entries: [entry("a")] })]);
  assertEquals(read(bom).dropped, 1);
});
