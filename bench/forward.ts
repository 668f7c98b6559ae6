/**
 * Forward-mode benchmarks, on each DNAT backend: the API's allocation rate,
 * and UDP through an allocated port against the same stream routed without
 * NAT; and the daemon's churn (bench/forward_churn.ts).
 * @module
 */
// deno-lint-ignore-file no-console
import { FIP, must, ROOT } from "../tests/testbed/mod.ts";
import { benchForwardBed, FORWARD_BACKENDS, type ForwardBackend } from "./_forward_bed.ts";
import { median, type Report } from "./_report.ts";
import { denoScriptInNs, udpStream } from "./_measure.ts";
import { forwardChurn } from "./forward_churn.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");

/** Forward mode: BENCH_ONLY=forward:api,forward:churn (section names below) runs only those. */
export async function forwardBenchmarks(report: Report): Promise<void> {
  const only = Deno.env.get("BENCH_ONLY")?.split(",").filter((e) => e.startsWith("forward:"))
    .map((e) => e.slice("forward:".length));
  const sections: Array<[string, () => Promise<void>]> = [
    ["api", async () => {
      for (const backend of FORWARD_BACKENDS) await forwardApi(backend, report);
    }],
    ["churn", () => forwardChurn(report)],
  ];
  for (const [name, section] of sections) {
    if (!only?.length || only.includes(name)) await section();
  }
}

/** API allocations per second, and UDP through an allocated port, on one backend. */
async function forwardApi(backend: ForwardBackend, report: Report): Promise<void> {
  console.log(
    `Forward API (${backend}): allocations per second, and UDP through an allocated port`,
  );
  // Allocation rate is measured beyond the per-user cap's default (128 live sessions), and
  // sessions live for the whole run without keepalives.
  const bed = await benchForwardBed(backend, (config) =>
    config
      .replace("</proxy>", "<max_sessions_per_user>65535</max_sessions_per_user></proxy>")
      .replace("<session_timeout>4</session_timeout>", "<session_timeout>600</session_timeout>")
      .replace("<port_range_high>5199", "<port_range_high>6999"));
  try {
    const client = await must(
      denoScriptInNs(
        bed.ns.inside,
        `${ROOT}bench/forward_client.ts`,
        `http://${FIP.proxyIn}:9091`,
        FIP.outside,
      ),
      { timeoutMs: 300_000 },
    );
    const api = JSON.parse(client);
    report.add({
      section: "Forward API",
      metric: `${backend}: allocations per second`,
      unit: "/s",
      candidate: api.concurrent,
      baseline: api.sequential,
      baselineName: "sequential",
      note: "candidate: 20 concurrent clients",
    });
    // UDP through an allocated port vs routed straight to the outside server (routes added for the baseline only).
    const created = JSON.parse(
      await must([
        "ip",
        "netns",
        "exec",
        bed.ns.inside,
        "curl",
        "-s",
        "-d",
        JSON.stringify({ destination: FIP.outside, ssh_port: 22, udp_port: 33001 }),
        `http://${FIP.proxyIn}:9091/v1/sessions`,
        "-u",
        "bench:pw",
      ]),
    );
    await must(["ip", "-n", bed.ns.inside, "route", "add", FIP.outside, "via", FIP.proxyIn]);
    await must(["ip", "-n", bed.ns.outside, "route", "add", FIP.inside, "via", FIP.proxyOut]);
    const sink = [
      "ip",
      "netns",
      "exec",
      bed.ns.outside,
      "python3",
      `${ROOT}tests/udp_sink.py`,
      "33001",
    ];
    const viaPort: number[] = [];
    const routed: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      viaPort.push(
        (await udpStream(bed.ns.inside, sink, 42000 + r, FIP.proxyIn, created.port)).mbit,
      );
      routed.push((await udpStream(bed.ns.inside, sink, 43000 + r, FIP.outside, 33001)).mbit);
    }
    report.add({
      section: "Forward API",
      metric: `${backend}: UDP through an allocated port`,
      unit: "Mbit/s",
      candidate: median(viaPort),
      baseline: median(routed),
      baselineName: "routed, no NAT",
    });
  } finally {
    await bed.close();
  }
}
