import { assertEquals } from "../_assert.ts";
import { conntrackTool, type MarkedFlow } from "../../src/dnat/conntrack.ts";
import { type FlowOwner, staleFlows, sweepStaleFlows } from "../../src/dnat/sweep.ts";
import { SESSION_CT_MARK } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import { conntrackTable, entryLine } from "../_fakes/conntrack_table.ts";
import { fakeConntrack } from "../_fakes/dnat.ts";
import { recordingRunner } from "../_fakes/runner.ts";
import { fakeLogger } from "../_fakes/logger.ts";
import { dnatSession, markedFlow } from "./_build.ts";

/** A marked flow from `sport` to the proxy's `dport`. */
function flow(
  sport: number,
  dport = 33001,
  extra: { protocol?: "udp" | "tcp"; client?: string; proxy?: string } = {},
): MarkedFlow {
  return markedFlow({ ...extra, sport, dport });
}

/** What goes, one string per conntrack delete: protocol client:port>proxy:port. */
function deletes(flows: readonly MarkedFlow[], owners: readonly FlowOwner[]): string[] {
  return staleFlows(flows, owners).flatMap((p) =>
    p.selectors.map((s) =>
      `${s.protocol} ${s.client.text}:${s.clientPort ?? "*"}>${s.proxy.text}:${s.proxyPort}`
    )
  );
}

Deno.test("staleFlows() leaves every flow of a live address-only session, spans included", () => {
  const owner = dnatSession({ portCount: 3 });
  assertEquals(deletes([flow(40000), flow(40001, 33002), flow(40002, 33003)], [owner]), []);
});

Deno.test("staleFlows() leaves a learned session's flow, and removes its client's other ports' by port", () => {
  const owner = dnatSession({ clientPort: 40000 });
  assertEquals(deletes([flow(40000)], [owner]), []);
  // Left by a purge that failed when the port was learned: one delete each, the live flow stays.
  assertEquals(deletes([flow(40000), flow(40001), flow(40002)], [owner]), [
    "udp 198.18.1.2:40001>198.18.1.1:33001",
    "udp 198.18.1.2:40002>198.18.1.1:33001",
  ]);
});

Deno.test("staleFlows() removes a flow of no session with one delete for its port", () => {
  assertEquals(deletes([flow(40000), flow(40001)], []), ["udp 198.18.1.2:*>198.18.1.1:33001"]);
  // Another client's session, another proxy address, another port: none of them owns it.
  const others = [
    dnatSession({ client: parseIp("198.18.1.3")! }),
    dnatSession({ proxy: parseIp("198.18.1.17")! }),
    dnatSession({ proxyPort: 33002 }),
  ];
  assertEquals(deletes([flow(40000)], others), ["udp 198.18.1.2:*>198.18.1.1:33001"]);
  const [port] = staleFlows([flow(40000), flow(40001)], others);
  assertEquals(port?.flows.length, 2);
});

Deno.test("staleFlows() tells IPv6 sessions apart as IPv4 ones", () => {
  const v6 = { client: "2001:db8::2", proxy: "2001:db8::1" };
  const owner = dnatSession({
    client: parseIp("2001:db8::2")!,
    proxy: parseIp("2001:db8::1")!,
    clientPort: 40000,
  });
  assertEquals(deletes([flow(40000, 33001, v6), flow(40001, 33001, v6)], [owner]), [
    "udp 2001:db8::2:40001>2001:db8::1:33001",
  ]);
  assertEquals(deletes([flow(40000, 33001, v6)], []), ["udp 2001:db8::2:*>2001:db8::1:33001"]);
});

Deno.test("staleFlows() removes a flood of source ports with one delete per proxy port", () => {
  // The client chooses how many source ports it sends from; every delete walks the whole table.
  const flood = (dport: number) => Array.from({ length: 500 }, (_, i) => flow(42000 + i, dport));
  assertEquals(deletes([...flood(33001), ...flood(33002)], []), [
    "udp 198.18.1.2:*>198.18.1.1:33001",
    "udp 198.18.1.2:*>198.18.1.1:33002",
  ]);
  // Where a live session learned one of the client's ports there, one by one, but only so far.
  const learned = dnatSession({ clientPort: 42000 });
  assertEquals(deletes(flood(33001).slice(0, 33), [learned]).length, 32);
  assertEquals(deletes(flood(33001).slice(0, 34), [learned]), [
    "udp 198.18.1.2:*>198.18.1.1:33001",
  ]);
});

Deno.test("staleFlows() leaves a forward session's TCP flow, never a reverse session's", () => {
  const tcp = { protocol: "tcp" as const };
  const forward = dnatSession({ proxyPort: 5000, tcpServerPort: 22, clientPort: 41000 });
  // A learned port is a UDP source port: the SSH connection comes from any.
  assertEquals(deletes([flow(50000, 5000, tcp)], [forward]), []);
  assertEquals(deletes([flow(50000, 5000, tcp)], [dnatSession({ proxyPort: 5000 })]), [
    "tcp 198.18.1.2:*>198.18.1.1:5000",
  ]);
});

Deno.test("sweepStaleFlows() over conntrack removes flows of no session, and nothing without the mark", async () => {
  const proxy = { ip: "198.18.1.1", port: 33001 };
  const table = conntrackTable([
    entryLine("udp", { ip: "198.18.1.2", port: 40000 }, proxy, { mark: SESSION_CT_MARK }),
    entryLine("udp", { ip: "198.18.1.3", port: 40000 }, proxy, { mark: SESSION_CT_MARK }),
    // No session either, but no mark: not ours.
    entryLine("udp", { ip: "198.18.1.3", port: 40001 }, proxy),
    entryLine("udp", { ip: "198.18.1.4", port: 40000 }, proxy),
    entryLine("udp", { ip: "2001:db8::2", port: 40000 }, { ip: "2001:db8::1", port: 33001 }, {
      mark: SESSION_CT_MARK,
      packets: 7,
    }),
  ]);
  const log = fakeLogger();
  const conntrack = conntrackTool(table.runner);
  const owners = [dnatSession()]; // 198.18.1.2, address-only
  assertEquals(await sweepStaleFlows({ conntrack, log }, owners), 2);
  assertEquals(
    table.entries().map((e) => /src=(\S+) .*? sport=(\d+)/.exec(e)!.slice(1).join(":")),
    [
      "198.18.1.2:40000",
      "198.18.1.3:40001",
      "198.18.1.4:40000",
    ],
  );
  assertEquals(log.records.map((r) => `${r.level} ${r.text}`), [
    "warn Removed stale UDP forwarding flows between 198.18.1.3:40000 and 198.18.1.1:33001 (no session)",
    "warn Removed stale UDP forwarding flows between [2001:db8::2]:40000 and [2001:db8::1]:33001 (no session)",
  ]);
  assertEquals(log.records[1]!.fields, {
    client: "[2001:db8::2]:40000",
    proxy: "[2001:db8::1]:33001",
    protocol: "udp",
    flows: 1,
    bytes: 700,
    packets: 7,
  });
  // Nothing left of no session: two listings, no delete.
  const calls = table.runner.calls.length;
  assertEquals(await sweepStaleFlows({ conntrack, log }, owners), 0);
  assertEquals(table.runner.calls.slice(calls).map((c) => c.args[0]), ["-L", "-L"]);
});

Deno.test("sweepStaleFlows() logs one line per port, whatever the number of its flows", async () => {
  const conntrack = fakeConntrack();
  conntrack.markedList.push(...Array.from({ length: 50 }, (_, i) => flow(42000 + i)));
  const log = fakeLogger();
  assertEquals(await sweepStaleFlows({ conntrack, log }, []), 50);
  assertEquals(conntrack.sweeps, ["udp 198.18.1.2:*>198.18.1.1:33001 0x78700000"]);
  assertEquals(log.records.map((r) => [r.text, r.fields.flows]), [[
    "Removed stale UDP forwarding flows between 198.18.1.2:* and 198.18.1.1:33001 (no session)",
    50,
  ]]);
});

Deno.test("sweepStaleFlows() sweeps one family when the other cannot be listed, and says so once", async () => {
  // A host booted with ipv6.disable=1, or a conntrack that cannot list IPv6: IPv4 is swept all
  // the same, and the failure is one line, not one every 30 s.
  let ipv6 = {
    code: 1,
    stderr: "conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters",
  };
  const stale = entryLine("udp", { ip: "198.18.1.3", port: 40000 }, {
    ip: "198.18.1.1",
    port: 33001,
  }, {
    mark: SESSION_CT_MARK,
  });
  const runner = recordingRunner((call) =>
    call.args[0] !== "-L"
      ? { stdout: stale }
      : call.args.includes("ipv6")
      ? ipv6
      : { stdout: stale }
  );
  const log = fakeLogger();
  const conntrack = conntrackTool(runner);
  assertEquals(await sweepStaleFlows({ conntrack, log }, []), 1);
  assertEquals(await sweepStaleFlows({ conntrack, log }, []), 1);
  ipv6 = { code: 0, stderr: "" };
  assertEquals(await sweepStaleFlows({ conntrack, log }, []), 1);
  assertEquals(
    log.records.filter((r) => !r.text.startsWith("Removed stale")).map((r) =>
      `${r.level} ${r.text}`
    ),
    [
      "warn Cannot list the IPv6 flows that carry the session mark, so none of them is swept until it can: conntrack -L failed: conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters",
      "debug Cannot list the IPv6 flows that carry the session mark, so none of them is swept until it can: conntrack -L failed: conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters",
      "info Listed the IPv6 flows that carry the session mark again",
    ],
  );
  assertEquals(log.records.filter((r) => r.text.startsWith("Removed stale")).length, 3);
});

Deno.test("sweepStaleFlows() sweeps whatever the number of marked flows", async () => {
  // A client keeps as many marked flows as its address-only session (a forward session, a rule
  // without source-port filtering) has source ports and proxy ports: gathering some 130000 of
  // them with push(...) once overflowed the stack, and every sweep after it failed.
  const count = 200_000;
  const proxy = { ip: "198.18.1.1", port: 33001 };
  const listing = [
    ...Array.from(
      { length: count },
      (_, i) =>
        entryLine("udp", { ip: "198.18.1.2", port: 1024 + i % 60000 }, {
          ...proxy,
          port: 33001 + Math.floor(i / 60000),
        }, { mark: SESSION_CT_MARK }),
    ),
    entryLine("udp", { ip: "198.18.1.3", port: 40000 }, proxy, { mark: SESSION_CT_MARK }),
  ].join("\n");
  const runner = recordingRunner((call) => ({ stdout: call.args.includes("ipv4") ? listing : "" }));
  const owner = dnatSession({ portCount: 4 }); // 198.18.1.2, address-only: owns all of them
  const log = fakeLogger();
  assertEquals(await sweepStaleFlows({ conntrack: conntrackTool(runner), log }, [owner]), 1);
  assertEquals(
    runner.calls.at(-1)?.stdin,
    "-D -p udp --orig-src 198.18.1.3 --orig-dst 198.18.1.1 --dport 33001 --mark 0x78700000\n",
  );
});
