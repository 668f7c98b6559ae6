import { assertEquals } from "../_assert.ts";
import { conntrackTool, flowFilter, parseCounters, parseFlows } from "../../src/dnat/conntrack.ts";
import { parseIp } from "../../src/net/ip.ts";
import { recordingRunner } from "../_fakes/runner.ts";

const LISTING =
  "udp      17 29 src=198.18.1.2 dst=198.18.1.1 sport=40000 dport=33001 packets=20 bytes=4560 src=198.18.2.2 dst=198.18.2.1 sport=33001 dport=40000 packets=20 bytes=4560 mark=0 use=1\n" +
  "udp      17 12 src=198.18.1.2 dst=198.18.1.1 sport=40001 dport=33002 packets=1 bytes=228 [UNREPLIED] src=198.18.2.2 dst=198.18.2.1 sport=33002 dport=40001 packets=0 bytes=0 mark=0 use=1\n";

Deno.test("parseFlows() reads the original direction's client address and ports", () => {
  assertEquals(parseFlows(LISTING), [
    { src: "198.18.1.2", sport: 40000, dport: 33001 },
    { src: "198.18.1.2", sport: 40001, dport: 33002 },
  ]);
});

Deno.test("parseCounters() adds both directions of every flow", () => {
  assertEquals(parseCounters(LISTING), { packets: 41, bytes: 9348 });
  assertEquals(parseCounters(""), { packets: 0, bytes: 0 });
});

Deno.test("flowFilter() selects one proxy port, and the source port once learned", () => {
  const s = { client: parseIp("2001:db8::2")!, proxy: parseIp("2001:db8::1")!, clientPort: 40000 };
  assertEquals(flowFilter(s, 33001), [
    "-f",
    "ipv6",
    "-p",
    "udp",
    "--orig-src",
    "2001:db8::2",
    "--orig-dst",
    "2001:db8::1",
    "--sport",
    "40000",
    "--dport",
    "33001",
  ]);
});

Deno.test("purge() deletes each port of a span and sums what the flows carried", async () => {
  const runner = recordingRunner((call) =>
    call.args.includes("33001")
      ? { stdout: LISTING.split("\n")[0] + "\n" }
      : { code: 1, stderr: "0 flow entries have been deleted" }
  );
  const s = {
    client: parseIp("198.18.1.2")!,
    proxy: parseIp("198.18.1.1")!,
    proxyPort: 33001,
    portCount: 3,
  };
  assertEquals(await conntrackTool(runner).purge(s), { packets: 40, bytes: 9120 });
  assertEquals(runner.calls.map((c) => c.args.at(-1)), ["33001", "33002", "33003"]);
});
