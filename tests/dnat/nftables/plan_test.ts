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
    { set: "flows", key: "198.18.1.2 . 198.18.2.2 . 33001" },
  ]);
  assertEquals(natElements(session({ clientPort: 60953 }))[0], {
    set: "dnat_port",
    key: "198.18.1.2 . 60953 . 198.18.1.1 . 33001",
    data: "198.18.2.2 . 33001",
  });
  const span = natElements(session({ portCount: 3 }));
  assertEquals(span.filter((e) => e.set === "dnat_addr").map((e) => e.key.split(" . ")[2]), [
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

Deno.test("tableText() builds our own table with NAT maps, flow set and marked forward accept", () => {
  const text = tableText(6);
  assertIncludes(text, "table ip6 xferproxy {");
  assertIncludes(text, "type ipv6_addr . inet_service . ipv6_addr . inet_service");
  assertIncludes(text, `ct mark set ${CT_MARK} accept`);
  assertEquals(text.includes("set sessions"), false);
});

Deno.test("parseElementIds() reads our maps' and sets' elements from one nft -j table listing", () => {
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
  assertEquals([...parseElementIds(json)], [
    "dnat_addr|198.18.1.2 . 198.18.1.1 . 33001",
    "flows|198.18.1.2 . 198.18.2.2 . 33001",
  ]);
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
  const leaving = session();
  const staying = session({ clientPort: 40000 }); // same client, server and port: same flow element
  await nftablesBackend(nftCommandRunner(runner)).remove([leaving], [staying]);
  const text = runner.calls[1]!.stdin!;
  assertIncludes(text, "delete element ip xferproxy dnat_addr");
  assertEquals(text.includes("delete element ip xferproxy flows"), false);
  assertEquals(neededElements([leaving, staying]).size, 3);
});

Deno.test("a forward session's TCP port gets its own map and flow set elements", () => {
  const forward = session({ tcpServerPort: 22 });
  assertEquals(natElements(forward).slice(2), [
    {
      set: "dnat_tcp",
      key: "198.18.1.2 . 198.18.1.1 . 33001",
      data: "198.18.2.2 . 22",
    },
    { set: "tcp_flows", key: "198.18.1.2 . 198.18.2.2 . 22" },
  ]);
  const text = tableText(4);
  assertIncludes(text, "map dnat_tcp {");
  assertIncludes(text, "meta l4proto tcp dnat ip to ip saddr . ip daddr . tcp dport map @dnat_tcp");
  assertIncludes(text, "ct status dnat ip saddr . ip daddr . tcp dport @tcp_flows masquerade");
  assertIncludes(
    tableText(6),
    `ct status dnat ip6 daddr . ip6 saddr . tcp sport @tcp_flows ct mark set ${CT_MARK} accept`,
  );
});

Deno.test("ensureReady() adds TCP, once, to a table an earlier version made without it", async () => {
  const old = "table ip xferproxy {\n chain prerouting {\n  meta l4proto udp dnat ip to ...\n }\n}";
  const runner = recordingRunner((call) => {
    const text = call.args.join(" ") + (call.stdin ?? "");
    if (text.includes("list tables")) return { stdout: "table ip xferproxy\n" };
    if (text.includes("list chain ip xferproxy prerouting")) return { stdout: old };
    return {};
  });
  const backend = nftablesBackend(nftCommandRunner(runner));
  await backend.ensureReady(4);
  await backend.ensureReady(4);
  const changes = runner.calls.map((c) => c.stdin ?? "").filter((t) => t.includes("add rule"));
  assertEquals(changes.length, 1);
  assertIncludes(changes[0]!, "map dnat_tcp {");
  assertIncludes(
    changes[0]!,
    "add rule ip xferproxy prerouting meta l4proto tcp dnat ip to ip saddr . ip daddr . tcp dport map @dnat_tcp",
  );
  assertEquals(runner.calls.filter((c) => c.stdin?.includes("list chain")).length, 1);
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
