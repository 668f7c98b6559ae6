/**
 * Forward-mode benchmarks: the API's allocation rate, and UDP through an
 * allocated port against the same stream routed without NAT.
 * @module
 */
// deno-lint-ignore-file no-console
import {
  BINARY,
  createForwardBed,
  FIP,
  type ForwardBed,
  forwardConfig,
  must,
  ROOT,
} from "../tests/testbed/mod.ts";
import { median, type Report } from "./_report.ts";
import { denoScriptInNs, udpStream } from "./_measure.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");

/** Forward mode: API allocations per second, and UDP through an allocated port. */
export async function forwardBenchmarks(report: Report): Promise<void> {
  console.log("Forward API: allocations per second, and UDP through an allocated port");
  const bed: ForwardBed = await createForwardBed();
  try {
    await Deno.writeTextFile(bed.configPath, forwardConfig(bed.dir));
    await must([
      BINARY,
      "forward",
      "user",
      "add",
      "bench",
      "--password-stdin",
      "--allow",
      // The outside server sits on a network the proxy is attached to: allowed explicitly, as policy requires.
      `${FIP.outside}/32`,
      "--config",
      bed.configPath,
    ], { stdin: "pw" });
    // Allocation rate is measured beyond the per-user cap's default (128 live sessions).
    await bed.startDaemon(
      forwardConfig(bed.dir, "<max_sessions_per_user>65535</max_sessions_per_user>").replace(
        "<session_timeout>4</session_timeout>",
        "<session_timeout>600</session_timeout>",
      )
        .replace("<port_range_high>5199", "<port_range_high>6999"),
    );
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
      metric: "allocations per second",
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
      metric: "UDP through an allocated port",
      unit: "Mbit/s",
      candidate: median(viaPort),
      baseline: median(routed),
      baselineName: "routed, no NAT",
    });
  } finally {
    await bed.close();
  }
}
