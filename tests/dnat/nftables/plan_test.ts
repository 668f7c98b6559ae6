import { assertEquals, assertIncludes } from "../../_assert.ts";
import {
  addLine,
  CT_MARK,
  deleteLines,
  ELEMENT_TIMEOUT_S,
  natElements,
  neededElements,
  parseElementIds,
  refreshLines,
  tableText,
  upgradeText,
} from "../../../src/dnat/nftables/plan.ts";
import { nftablesBackend, nftCommandRunner } from "../../../src/dnat/nftables/backend.ts";
import { recordingRunner } from "../../_fakes/runner.ts";
import { dnatSession } from "../_build.ts";

const session = dnatSession;

Deno.test("natElements(): address-only until the port is learned, one per port of a span", () => {
  assertEquals(natElements(session()), [
    {
      set: "dnat_addr",
      key: "198.18.1.2 . 198.18.1.1 . 33001",
      data: "198.18.2.2 . 33001",
    },
  ]);
  assertEquals(natElements(session({ clientPort: 60953 }))[0], {
    set: "dnat_port",
    key: "198.18.1.2 . 60953 . 198.18.1.1 . 33001",
    data: "198.18.2.2 . 33001",
  });
  const span = natElements(session({ portCount: 3 }));
  assertEquals(span.map((e) => e.key.split(" . ")[2]), [
    "33001",
    "33002",
    "33003",
  ]);
});

Deno.test("element lines carry a timeout; deletes and refreshes never fail on a missing element", () => {
  const [dnat] = natElements(session());
  assertEquals(
    addLine(4, dnat!),
    `add element ip xferproxy dnat_addr { 198.18.1.2 . 198.18.1.1 . 33001 timeout ${ELEMENT_TIMEOUT_S}s : 198.18.2.2 . 33001 }`,
  );
  assertEquals(deleteLines(6, dnat!), [
    addLine(6, dnat!),
    "delete element ip6 xferproxy dnat_addr { 198.18.1.2 . 198.18.1.1 . 33001 }",
  ]);
  assertEquals(refreshLines(4, dnat!), [...deleteLines(4, dnat!), addLine(4, dnat!)]);
});

Deno.test("tableText() builds our own table with NAT maps and a forward accept by the mark", () => {
  const text = tableText(6);
  assertIncludes(text, "table ip6 xferproxy {");
  assertIncludes(text, "type ipv6_addr . inet_service . ipv6_addr . inet_service");
  assertIncludes(text, `ct mark ${CT_MARK} accept`);
  assertEquals(text.includes("set sessions"), false);
});

/** The rules of one chain of a table text, one per line, without the chain's type line. */
function chainOf(text: string, chain: string): string[] {
  const body = text.split(`  chain ${chain} {\n`)[1]!.split("\n  }")[0]!;
  return body.split("\n").slice(1).map((l) => l.trim());
}

Deno.test("tableText() marks a flow at our own DNAT only, and accepts and masquerades by the mark alone", () => {
  // A flow something else translates from a session's client to the session's server port
  // (a published container port, a Kubernetes service) meets no rule of ours that marks it.
  const text = tableText(4);
  assertEquals(chainOf(text, "prerouting"), [
    `meta l4proto udp ip saddr . udp sport . ip daddr . udp dport @dnat_port ct mark set ${CT_MARK} dnat ip to ip saddr . udp sport . ip daddr . udp dport map @dnat_port`,
    `meta l4proto udp ip saddr . ip daddr . udp dport @dnat_addr ct mark set ${CT_MARK} dnat ip to ip saddr . ip daddr . udp dport map @dnat_addr`,
    `meta l4proto tcp ip saddr . ip daddr . tcp dport @dnat_tcp ct mark set ${CT_MARK} dnat ip to ip saddr . ip daddr . tcp dport map @dnat_tcp`,
  ]);
  assertEquals(chainOf(text, "postrouting"), [`ct status dnat ct mark ${CT_MARK} masquerade`]);
  assertEquals(chainOf(text, "forward"), [`ct status dnat ct mark ${CT_MARK} accept`]);
  assertEquals(text.includes("flows"), false);
  assertEquals(
    chainOf(tableText(6), "prerouting")[1],
    `meta l4proto udp ip6 saddr . ip6 daddr . udp dport @dnat_addr ct mark set ${CT_MARK} dnat ip6 to ip6 saddr . ip6 daddr . udp dport map @dnat_addr`,
  );
});

Deno.test("upgradeText() converts an earlier table in one transaction: TCP map, then every rule of ours", () => {
  assertEquals(
    upgradeText(4),
    [
      "table ip xferproxy {",
      "  map dnat_tcp {",
      "    type ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service",
      "    flags timeout",
      "  }",
      "}",
      "flush chain ip xferproxy prerouting",
      ...chainOf(tableText(4), "prerouting").map((r) => `add rule ip xferproxy prerouting ${r}`),
      "flush chain ip xferproxy postrouting",
      `add rule ip xferproxy postrouting ct status dnat ct mark ${CT_MARK} masquerade`,
      "flush chain ip xferproxy forward",
      `add rule ip xferproxy forward ct status dnat ct mark ${CT_MARK} accept`,
    ].join("\n") + "\n",
  );
  // The earlier flow sets stay (a process of that version may still write them): never deleted.
  assertEquals(upgradeText(6).includes("delete"), false);
  assertIncludes(
    upgradeText(6),
    "type ipv6_addr . ipv6_addr . inet_service : ipv6_addr . inet_service",
  );
});

Deno.test("parseElementIds() reads our maps' elements from one nft -j table listing, no other set", () => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: {} },
      { table: { family: "ip", name: "xferproxy" } },
      {
        map: {
          name: "dnat_addr",
          elem: [[
            { elem: { val: { concat: ["198.18.1.2", "198.18.1.1", 33001] }, timeout: 120 } },
            { concat: ["198.18.2.2", 33001] },
          ]],
        },
      },
      { set: { name: "flows", elem: [{ concat: ["198.18.1.2", "198.18.2.2", 33001] }] } },
      {
        // Not ours: an administrator's set in the table is no session's element.
        set: { name: "admin_allow", elem: [{ concat: ["198.18.9.9", "198.18.2.2", 22] }] },
      },
      { chain: { name: "prerouting" } },
    ],
  });
  // An earlier version's flow set is no longer ours to reconcile: its elements expire.
  assertEquals([...parseElementIds(json)], ["dnat_addr|198.18.1.2 . 198.18.1.1 . 33001"]);
});

Deno.test("nftablesBackend.add() is one transaction whatever the number of live sessions", async () => {
  const runner = recordingRunner();
  await nftablesBackend(nftCommandRunner(runner)).add([session()]);
  assertEquals(runner.calls.map((c) => [c.program, c.args]), [["nft", ["-f", "-"]]]);
  assertEquals(
    runner.calls[0]!.stdin,
    natElements(session()).map((e) => addLine(4, e)).join("\n") + "\n",
  );
});

Deno.test("nftablesBackend.remove() keeps elements another session still needs", async () => {
  const runner = recordingRunner((call) =>
    call.stdin === "list tables\n" ? { stdout: "table ip xferproxy\n" } : {}
  );
  const leaving = session({ tcpServerPort: 22 });
  const staying = session(); // same client, proxy address and port: the same dnat_addr element
  await nftablesBackend(nftCommandRunner(runner)).remove([leaving], [staying]);
  const text = runner.calls[1]!.stdin!;
  assertIncludes(text, "delete element ip xferproxy dnat_tcp");
  assertEquals(text.includes("delete element ip xferproxy dnat_addr"), false);
  assertEquals(neededElements([leaving, staying]).size, 2);
});

Deno.test("a forward session's TCP port gets its own map element, marked at its DNAT", () => {
  const forward = session({ tcpServerPort: 22 });
  assertEquals(natElements(forward).slice(1), [
    {
      set: "dnat_tcp",
      key: "198.18.1.2 . 198.18.1.1 . 33001",
      data: "198.18.2.2 . 22",
    },
  ]);
  const text = tableText(4);
  assertIncludes(text, "map dnat_tcp {");
  assertIncludes(
    text,
    `meta l4proto tcp ip saddr . ip daddr . tcp dport @dnat_tcp ct mark set ${CT_MARK} dnat ip to ip saddr . ip daddr . tcp dport map @dnat_tcp`,
  );
});

Deno.test("ensureReady() converts, once, a table an earlier version made; a current one never", async () => {
  // Prerouting chains as `nft list chain` prints them (nft 1.0.6 drops the redundant l4proto).
  const udpOnly =
    "table ip xferproxy {\n chain prerouting {\n  meta l4proto udp dnat ip to ...\n }\n}";
  const markedInForward = udpOnly.replace(
    "...",
    "...\n  meta l4proto tcp dnat ip to ip saddr . ip daddr . tcp dport map @dnat_tcp",
  );
  const current = `table ip xferproxy {\n chain prerouting {\n  ${
    chainOf(tableText(4), "prerouting").map((r) => r.replace(/^meta l4proto \w+ /, "")).join(
      "\n  ",
    )
  }\n }\n}`;
  for (const [listing, converted] of [[udpOnly, true], [markedInForward, true], [current, false]]) {
    const runner = recordingRunner((call) => {
      const text = call.args.join(" ") + (call.stdin ?? "");
      if (text.includes("list tables")) return { stdout: "table ip xferproxy\n" };
      if (text.includes("list chain ip xferproxy prerouting")) return { stdout: String(listing) };
      return {};
    });
    const backend = nftablesBackend(nftCommandRunner(runner));
    await backend.ensureReady(4);
    await backend.ensureReady(4);
    const changes = runner.calls.map((c) => c.stdin ?? "").filter((t) => t.includes("add rule"));
    // The runner ends every transaction with a newline of its own.
    assertEquals(changes, converted ? [upgradeText(4) + "\n"] : [], String(listing));
    assertEquals(runner.calls.filter((c) => c.stdin?.includes("list chain")).length, 1);
  }
});

Deno.test("nftablesBackend.remove() after a flush took the table: nothing left, nothing to fail", async () => {
  const runner = recordingRunner(() => ({ stdout: "" }));
  await nftablesBackend(nftCommandRunner(runner)).remove([session()], []);
  assertEquals(runner.calls.map((c) => c.stdin), ["list tables\n"]);
});

Deno.test("nftablesBackend.reconcile() lists our table once per round and re-adds what a flush took", async () => {
  const wanted = session();
  const listing = (elements: ReturnType<typeof natElements>) =>
    JSON.stringify({
      nftables: elements.map((e) => ({
        [e.data === undefined ? "set" : "map"]: {
          name: e.set,
          elem: [
            e.data === undefined
              ? { concat: e.key.split(" . ") }
              : [{ concat: e.key.split(" . ") }, { concat: e.data.split(" . ") }],
          ],
        },
      })),
    });
  for (const kernel of [natElements(wanted), natElements(wanted).slice(1)]) {
    const runner = recordingRunner((call) => {
      if (call.stdin === "list tables\n") return { stdout: "table ip xferproxy\n" };
      if (call.stdin?.startsWith("list chain")) return { stdout: "tcp dport" };
      if (call.args.join(" ") === "-j list table ip xferproxy") {
        return { stdout: listing(kernel) };
      }
      return {};
    });
    const { repaired } = await nftablesBackend(nftCommandRunner(runner)).reconcile([wanted]);
    const listings = runner.calls.filter((c) => c.args[0] === "-j");
    assertEquals(listings.map((c) => c.args.join(" ")), ["-j list table ip xferproxy"]);
    const whole = kernel.length === natElements(wanted).length;
    assertEquals(repaired, whole ? [] : [wanted.id]);
    const added = runner.calls.filter((c) => c.stdin?.startsWith("add element")).length;
    assertEquals(added, whole ? 0 : 1);
  }
});

Deno.test("nftablesBackend.reconcile() looks at the prerouting chain every round: a flushed one comes back", async () => {
  const wanted = session();
  for (const flushed of [false, true]) {
    const runner = recordingRunner((call) => {
      if (call.stdin === "list tables\n") return { stdout: "table ip xferproxy\n" };
      if (call.stdin?.startsWith("list chain")) {
        return { stdout: flushed ? "chain prerouting {\n}" : "@dnat_tcp ct mark set" };
      }
      if (call.args[0] === "-j") return { stdout: JSON.stringify({ nftables: [] }) };
      return {};
    });
    const backend = nftablesBackend(nftCommandRunner(runner));
    await backend.ensureReady(4); // seen current once: installs do not look again
    const result = await backend.reconcile([wanted]);
    assertEquals(result.rehooked, flushed ? [wanted.id] : undefined);
    const upgrades = runner.calls.filter((c) =>
      c.stdin?.startsWith(upgradeText(4).split("\n")[0]!)
    );
    assertEquals(upgrades.length, flushed ? 2 : 0);
  }
});
