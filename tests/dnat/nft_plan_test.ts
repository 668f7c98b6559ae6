import { assertEquals, assertIncludes } from "../_assert.ts";
import {
  addLine,
  chooseSlot,
  deleteLine,
  natElements,
  parseKeys,
  parseRegistry,
  parseRegistryComment,
  registryComment,
  tableText,
} from "../../src/dnat/nft_plan.ts";
import { parseIp } from "../../src/net/ip.ts";
import type { DnatSession } from "../../src/dnat/types.ts";

const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";
const SESSION: DnatSession = {
  id: ID,
  owner: 4242,
  client: parseIp("198.18.1.2")!,
  proxy: parseIp("198.18.1.1")!,
  proxyPort: 33001,
  server: parseIp("198.18.2.2")!,
  serverPort: 33001,
};

Deno.test("registry comments record a session and read back, within nft's 127 characters", () => {
  const comment = registryComment({ ...SESSION, clientPort: 60953 });
  assertEquals(comment, `xferproxy:${ID}:4242 198.18.1.2 60953 198.18.1.1 33001 198.18.2.2 33001`);
  assertEquals(parseRegistryComment(comment), {
    id: ID,
    owner: 4242,
    client: "198.18.1.2",
    clientPort: 60953,
    proxy: "198.18.1.1",
    proxyPort: 33001,
    server: "198.18.2.2",
    serverPort: 33001,
  });
  assertEquals(parseRegistryComment(registryComment(SESSION))?.clientPort, undefined);
  const longest = registryComment({
    ...SESSION,
    owner: 4194304,
    clientPort: 65535,
    proxyPort: 65535,
    serverPort: 65535,
    client: parseIp("198.118.100.200")!,
    proxy: parseIp("198.118.100.201")!,
    server: parseIp("198.118.100.202")!,
  });
  assertEquals(longest.length <= 127, true);
  assertEquals(parseRegistryComment("someone else's element"), undefined);
  assertEquals(parseRegistryComment(`xferproxy:${ID}:1 1.2.3.4 * x 5 1.2.3.5 6`), undefined);
});

Deno.test("natElements() and add/delete lines carry keys, targets and a timeout", () => {
  const learning = natElements(parseRegistryComment(registryComment(SESSION))!);
  assertEquals(learning, [
    { set: "dnat_addr", key: "198.18.1.2 . 198.18.1.1 . 33001", data: "198.18.2.2 . 33001" },
    { set: "flows", key: "198.18.1.2 . 198.18.2.2 . 33001" },
  ]);
  assertEquals(
    addLine(4, learning[0]!),
    "add element ip xferproxy dnat_addr { 198.18.1.2 . 198.18.1.1 . 33001 timeout 60s : 198.18.2.2 . 33001 }",
  );
  assertEquals(
    addLine(4, { set: "sessions", key: "7", comment: "c" }),
    `add element ip xferproxy sessions { 7 timeout 60s comment "c" }`,
  );
  assertEquals(
    deleteLine(6, "flows", "a . b . 1"),
    "delete element ip6 xferproxy flows { a . b . 1 }",
  );
  const learned = natElements(
    parseRegistryComment(registryComment({ ...SESSION, clientPort: 60953 }))!,
  );
  assertEquals(learned[0], {
    set: "dnat_port",
    key: "198.18.1.2 . 60953 . 198.18.1.1 . 33001",
    data: "198.18.2.2 . 33001",
  });
});

Deno.test("tableText() builds our own table with NAT maps, flow set and marked forward accept", () => {
  const v4 = tableText(4);
  assertIncludes(v4, "table ip xferproxy {");
  assertIncludes(v4, "dnat ip to ip saddr . udp sport . ip daddr . udp dport map @dnat_port");
  assertIncludes(v4, "ct status dnat ip saddr . ip daddr . udp dport @flows masquerade");
  assertIncludes(v4, "ct mark set 0x78700000 accept");
  assertIncludes(
    tableText(6),
    "type ipv6_addr . ipv6_addr . inet_service : ipv6_addr . inet_service",
  );
});

Deno.test("chooseSlot() derives a slot from the id and probes past used ones", () => {
  const first = chooseSlot(ID, new Set());
  assertEquals(first, (0x3a9fd819 % 65535) + 1);
  assertEquals(chooseSlot(ID, new Set([first])), first + 1);
  assertEquals(chooseSlot("0000fffe-0000-4000-8000-000000000000", new Set([65535])), 1);
});

Deno.test("parseRegistry() and parseKeys() read nft -j listings", () => {
  const registry = JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6" } },
      {
        set: {
          name: "sessions",
          elem: [{
            elem: { val: 15000, timeout: 60, expires: 55, comment: registryComment(SESSION) },
          }, { elem: { val: 9, comment: "foreign" } }],
        },
      },
    ],
  });
  assertEquals(parseRegistry(registry).map((e) => [e.slot, e.session.id]), [[15000, ID]]);
  const map = JSON.stringify({
    nftables: [{
      map: {
        name: "dnat_addr",
        elem: [[{ elem: { val: { concat: ["198.18.1.2", "198.18.1.1", 33001] }, timeout: 60 } }, {
          concat: ["198.18.2.2", 33001],
        }]],
      },
    }],
  });
  assertEquals([...parseKeys(map)], ["198.18.1.2 . 198.18.1.1 . 33001"]);
  const set = JSON.stringify({
    nftables: [{
      set: {
        name: "flows",
        elem: [{ elem: { val: { concat: ["198.18.1.2", "198.18.2.2", 33001] } } }],
      },
    }],
  });
  assertEquals([...parseKeys(set)], ["198.18.1.2 . 198.18.2.2 . 33001"]);
  assertEquals(parseKeys(JSON.stringify({ nftables: [{ set: { name: "flows" } }] })).size, 0);
});
