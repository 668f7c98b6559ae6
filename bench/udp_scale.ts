/**
 * UDP at scale: one flow's throughput through its session's DNAT with 0, 1,
 * 100 and 1000 other sessions live, per backend and per mode's rule shape,
 * as a ratio against the same flow with none; the routed path with and
 * without conntrack loaded; and 20 concurrent flows through 20 sessions
 * against 20 routed flows. iperf3 (1400-byte datagrams, no rate limit)
 * between namespaces client → proxy → server; the rules are installed
 * through the real backends by bench/udp_scale_rules.ts inside the proxy.
 * @module
 */
// deno-lint-ignore-file no-console
import { addNamespaces, addVeth, must, namespaceName, ROOT, run } from "../tests/testbed/mod.ts";
import { median, type Report } from "./_report.ts";

/** Two measurements taken one right after the other, in the order given. */
async function paired(
  first: () => Promise<number>,
  second: () => Promise<number>,
  swap: boolean,
): Promise<[number, number]> {
  if (!swap) return [await first(), await second()];
  const b = await second();
  return [await first(), b];
}

/** Candidate, baseline and ratio of paired measurements: medians, and the pairs' median ratio. */
function pairedRow(pairs: readonly (readonly [number, number])[]) {
  return {
    candidate: median(pairs.map((p) => p[0])),
    baseline: median(pairs.map((p) => p[1])),
    ratio: median(pairs.map(([c, b]) => c / b)),
    note: `median of ${pairs.length} paired ratios`,
  };
}
import { denoScriptInNs, type Started, startReady } from "./_measure.ts";

// One flow on 2 cores is bimodal (about 800 or 1400 Mbit/s here), and the mode holds for minutes
// then flips: every count is streamed right beside its own no-other-session stream, and the ratio
// is the median of those pairs' ratios, which a flip between two streams of a pair moves only
// for that pair.
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "5");
const SECONDS = 5;
// The sender (whose CPU also runs the forwarding softirq of veth traffic) on one core, the
// receivers on the other: every stream meets the same placement, whatever the scheduler does.
const SENDER_CPU = "0";
const RECEIVER_CPU = "1";
const LIVE = [1, 100, 1000] as const;
const FLOWS = 20;
const PORT = 5201;
const PROXY = "198.18.1.1";
const SERVER = "198.18.2.2";
const clientIp = (j: number) => `198.18.1.${2 + j}`;

interface Bed {
  readonly ns: { client: string; proxy: string; server: string };
  close(): Promise<void>;
}

async function createBed(): Promise<Bed> {
  const id = namespaceName("u");
  const ns = { client: `${id}c`, proxy: `${id}p`, server: `${id}s` };
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const ipn = await addNamespaces(Object.values(ns), cleanups);
    await addVeth(ipn, [ns.client, "c0"], [ns.proxy, "p0"]);
    await addVeth(ipn, [ns.proxy, "p1"], [ns.server, "s0"]);
    for (let j = 0; j < FLOWS; j++) {
      await ipn(ns.client, "addr", "add", `${clientIp(j)}/24`, "dev", "c0");
    }
    await ipn(ns.proxy, "addr", "add", `${PROXY}/24`, "dev", "p0");
    await ipn(ns.proxy, "addr", "add", "198.18.2.1/24", "dev", "p1");
    await ipn(ns.server, "addr", "add", `${SERVER}/24`, "dev", "s0");
    for (
      const [n, dev] of [[ns.client, "c0"], [ns.proxy, "p0"], [ns.proxy, "p1"], [ns.server, "s0"]]
    ) {
      await ipn(n as string, "link", "set", dev as string, "up");
    }
    await ipn(ns.client, "route", "add", "198.18.2.0/24", "via", PROXY);
    await ipn(ns.server, "route", "add", "198.18.1.0/24", "via", "198.18.2.1");
    await must(["ip", "netns", "exec", ns.proxy, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    return { ns, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** iperf3 servers on the server, one per flow port, for the whole run. */
async function startServers(bed: Bed): Promise<() => Promise<void>> {
  const children = Array.from({ length: FLOWS }, (_, j) =>
    new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        bed.ns.server,
        "iperf3",
        "-s",
        "-A",
        RECEIVER_CPU,
        "-p",
        String(PORT + j),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn());
  await new Promise((r) => setTimeout(r, 500));
  return async () => {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      await c.status;
    }
  };
}

/** Receiver-side Mbit/s of `count` concurrent iperf3 UDP flows from the client, summed. */
async function stream(bed: Bed, dst: string, count = 1): Promise<number> {
  const results = await Promise.all(Array.from({ length: count }, (_, j) =>
    run([
      "ip",
      "netns",
      "exec",
      bed.ns.client,
      "iperf3",
      "-A",
      SENDER_CPU,
      "-c",
      dst,
      "-B",
      clientIp(j),
      "-p",
      String(PORT + j),
      "-u",
      "-b",
      "0",
      "-l",
      "1400",
      "-t",
      String(SECONDS),
      "-J",
    ], { timeoutMs: (SECONDS + 30) * 1000 })));
  let bits = 0;
  for (const r of results) {
    const doc = JSON.parse(r.stdout || "{}");
    if (doc.error || r.code !== 0) throw new Error(`iperf3 failed: ${doc.error ?? r.stderr}`);
    bits += doc.end.sum_received.bits_per_second;
  }
  return bits / 1e6;
}

/** iptables in the proxy's namespace (harness rules, outside our chains). */
function proxyIptables(bed: Bed, ...args: string[]): Promise<string> {
  return must(["ip", "netns", "exec", bed.ns.proxy, "iptables", ...args]);
}

/** The iperf3 control connections (TCP) of reverse-shaped sessions: a harness DNAT, outside ours. */
async function controlDnat(bed: Bed, on: boolean): Promise<void> {
  const ports = `${PORT}:${PORT + FLOWS - 1}`;
  await proxyIptables(
    bed,
    "-t",
    "nat",
    on ? "-A" : "-D",
    "PREROUTING",
    "-p",
    "tcp",
    "-d",
    PROXY,
    "--dport",
    ports,
    "-j",
    "DNAT",
    "--to-destination",
    SERVER,
  );
}

/** Holds `others` filler sessions plus `flows` measured ones while `fn` runs. */
async function withSessions<T>(
  bed: Bed,
  backend: string,
  mode: string,
  others: number,
  flows: number,
  fn: () => Promise<T>,
): Promise<T> {
  const rules: Started = await startReady(
    denoScriptInNs(
      bed.ns.proxy,
      `${ROOT}bench/udp_scale_rules.ts`,
      backend,
      mode,
      String(others),
      String(PORT),
      String(flows),
    ),
    300_000,
  );
  try {
    return await fn();
  } finally {
    await rules.finish();
  }
}

/** Loads conntrack in the proxy's namespace without NAT (one rule that asks for flow state). */
async function conntrackLoaded(bed: Bed, on: boolean): Promise<void> {
  await proxyIptables(
    bed,
    on ? "-A" : "-D",
    "FORWARD",
    "-m",
    "conntrack",
    "--ctstate",
    "INVALID",
    "-j",
    "DROP",
  );
}

/** The UDP-at-scale benchmarks. */
export async function udpScaleBenchmarks(report: Report): Promise<void> {
  console.log(`UDP at scale: one flow with ${LIVE.join(", ")} other sessions live; ${FLOWS} flows`);
  const bed = await createBed();
  const stopServers = await startServers(bed);
  try {
    // The routed path: no conntrack at all, then with conntrack loaded (what any NAT costs).
    const routed: Array<[number, number]> = [];
    for (let r = 0; r < ROUNDS; r++) {
      const tracked = async () => {
        await conntrackLoaded(bed, true);
        try {
          return await stream(bed, SERVER);
        } finally {
          await conntrackLoaded(bed, false);
        }
      };
      routed.push(await paired(tracked, () => stream(bed, SERVER), r % 2 === 1));
    }
    report.add({
      section: "UDP at scale",
      metric: "routed, conntrack loaded (no NAT)",
      unit: "Mbit/s",
      ...pairedRow(routed),
      baselineName: "routed, no conntrack",
    });
    const aggregate: Record<string, Array<[number, number]>> = {};
    const perRound: Record<string, Record<number, Array<[number, number]>>> = {};
    await conntrackLoaded(bed, true);
    for (const backend of ["iptables", "nftables"]) {
      for (const mode of ["reverse", "forward"]) {
        const label = `${backend}, ${mode} rules`;
        const flow = (live: number) => () =>
          withSessions(bed, backend, mode, live, 1, () => stream(bed, PROXY));
        // iperf3's control connection is TCP: forward sessions carry it on iptables; otherwise a
        // harness rule outside our chains does (nftables forwards UDP only).
        const harness = mode === "reverse" || backend === "nftables";
        if (harness) await controlDnat(bed, true);
        try {
          const byLive = new Map<number, Array<[number, number]>>(LIVE.map((n) => [n, []]));
          for (let r = 0; r < ROUNDS; r++) {
            for (const live of LIVE) {
              byLive.get(live)!.push(await paired(flow(live), flow(0), r % 2 === 1));
            }
          }
          perRound[label] = Object.fromEntries(byLive);
          const alone = [...byLive.values()].flat().map((p) => p[1]);
          report.add({
            section: "UDP at scale",
            metric: `${label}: one flow, no other session`,
            unit: "Mbit/s",
            candidate: median(alone),
            baseline: median(routed.map((p) => p[0])),
            baselineName: "routed, conntrack loaded",
          });
          for (const live of LIVE) {
            report.add({
              section: "UDP at scale",
              metric: `${label}: one flow, ${live} other sessions live`,
              unit: "Mbit/s",
              ...pairedRow(byLive.get(live)!),
              baselineName: "no other session",
            });
          }
          if (mode === "reverse") {
            // Every flow through its own session, the 1000 others live, against as many routed.
            const pairs: Array<[number, number]> = [];
            for (let r = 0; r < ROUNDS; r++) {
              pairs.push(
                await paired(
                  () =>
                    withSessions(bed, backend, mode, 1000, FLOWS, () => stream(bed, PROXY, FLOWS)),
                  () => stream(bed, SERVER, FLOWS),
                  r % 2 === 1,
                ),
              );
            }
            aggregate[backend] = pairs;
            report.add({
              section: "UDP at scale",
              metric: `${backend}: ${FLOWS} concurrent flows, 1000 other sessions live`,
              unit: "Mbit/s",
              ...pairedRow(pairs),
              baselineName: `${FLOWS} routed flows, conntrack loaded`,
            });
          }
        } finally {
          if (harness) await controlDnat(bed, false);
        }
      }
    }
    report.extra.udp_scale = {
      seconds_per_stream: SECONDS,
      rounds: ROUNDS,
      pairs: "[candidate, baseline] Mbit/s, in time order of rounds",
      routed,
      aggregate,
      per_round: perRound,
    };
  } finally {
    await stopServers();
    await bed.close();
  }
}
