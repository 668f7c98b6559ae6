/**
 * make bench: every figure is a ratio against a baseline measured in the
 * same run (or against a stated target), alternating candidate and baseline
 * over several rounds and taking medians. Writes bench/results.json and
 * bench/results.md. Needs root (network namespaces); tests never assert
 * timings, this does not either.
 */
// deno-lint-ignore-file no-console
import { BINARY, ROOT, run } from "../tests/testbed/mod.ts";
import { createReport, markdown } from "./_report.ts";
import { reverseBenchmarks, SCP_ROUNDS } from "./reverse.ts";
import { dnatBenchmarks } from "./dnat.ts";
import { forwardBenchmarks } from "./forward.ts";
import { udpScaleBenchmarks } from "./udp_scale.ts";
import { scaleOutBenchmarks } from "./scale_out.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");

async function versions(): Promise<Record<string, string>> {
  const first = async (argv: string[]) =>
    ((await run(argv)).stdout || (await run(argv)).stderr).trim().split("\n")[0] ?? "";
  return {
    xferproxy: await first([BINARY, "version"]),
    kernel: await first(["uname", "-r"]),
    iptables: await first(["iptables", "--version"]),
    nftables: await first(["nft", "--version"]),
    openssh: (await run(["ssh", "-V"])).stderr.trim(),
    python: await first(["python3", "--version"]),
    cores: String(navigator.hardwareConcurrency),
  };
}

if (Deno.uid() !== 0) {
  console.error("make bench builds network namespaces and test users: run it as root");
  Deno.exit(1);
}
// BENCH_ONLY=reverse:burst,scaleout runs those sections (reverse.ts reads the part after ":").
const only = Deno.env.get("BENCH_ONLY")?.split(",").map((entry) => entry.split(":")[0]);
const report = createReport();
const started = new Date();
const t0 = performance.now();
if (!only || only.includes("reverse")) await reverseBenchmarks(report);
if (!only || only.includes("dnat")) await dnatBenchmarks(report);
if (!only || only.includes("forward")) await forwardBenchmarks(report);
if (!only || only.includes("udpscale")) await udpScaleBenchmarks(report);
if (!only || only.includes("scaleout")) await scaleOutBenchmarks(report);
const info = await versions();
const seconds = (performance.now() - t0) / 1000;
await Deno.writeTextFile(
  `${ROOT}bench/results.json`,
  JSON.stringify(
    {
      started: started.toISOString(),
      seconds,
      rounds: ROUNDS,
      scp_rounds: SCP_ROUNDS,
      versions: info,
      rows: report.rows,
      extra: report.extra,
    },
    null,
    2,
  ) + "\n",
);
await Deno.writeTextFile(
  `${ROOT}bench/results.md`,
  markdown(report, info, { started, seconds, rounds: ROUNDS, scpRounds: SCP_ROUNDS }),
);
console.log(`\nWrote bench/results.md and bench/results.json in ${seconds.toFixed(0)} s`);
