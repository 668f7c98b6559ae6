/**
 * Several nodes behind one address (docs/scale-out.md): how long the example director takes to
 * stop sending new sessions to a node that was drained, or whose DNAT service was killed,
 * against the 5 s the issue sets as the goal. The director polls /healthz every second.
 * @module
 */
// deno-lint-ignore-file no-console
import { createScaleBed, SCALE_IP, waitFor } from "../tests/testbed/mod.ts";
import { median, percentile, type Report } from "./_report.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3") * 2;
const GOAL_MS = 5000;

/** Time from `act` until the director's latest map holds only node 2 (node 1 out). */
async function timeToLeave(
  bed: Awaited<ReturnType<typeof createScaleBed>>,
  act: () => Promise<void>,
): Promise<number> {
  const only2 = `-> ${SCALE_IP.node(2)}`;
  const start = performance.now();
  await act();
  await waitFor(
    "node 1 out",
    async () => (await bed.directorLog()).trimEnd().endsWith(only2),
    15_000,
    20,
  );
  return performance.now() - start;
}

/** Waits until both nodes are in the director's map again. */
async function bothIn(bed: Awaited<ReturnType<typeof createScaleBed>>): Promise<void> {
  const both = `-> ${SCALE_IP.node(1)} ${SCALE_IP.node(2)}`;
  await waitFor(
    "both nodes in",
    async () => (await bed.directorLog()).trimEnd().endsWith(both),
    15_000,
    50,
  );
}

/** The scale-out section. */
export async function scaleOutBenchmarks(report: Report): Promise<void> {
  console.log("\n== scale-out: time for the director to take a node out");
  const bed = await createScaleBed(2, 4);
  try {
    await bed.startDirector();
    const drained: number[] = [];
    const killed: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      drained.push(
        await timeToLeave(bed, async () => {
          await bed.dnat(1, ["drain"]);
        }),
      );
      await bed.dnat(1, ["undrain"]);
      await bothIn(bed);
      killed.push(await timeToLeave(bed, () => bed.stopService(1, "SIGKILL")));
      await bed.startService(1);
      await bothIn(bed);
    }
    report.extra.scale_out_ms = { drained, killed };
    for (const [what, times] of [["drained", drained], ["service killed", killed]] as const) {
      report.add({
        section: "scale-out",
        metric: `node ${what}: new sessions elsewhere, p50 (p95 ${
          percentile(times, 95).toFixed(0)
        } ms)`,
        unit: "ms",
        candidate: median(times),
        baseline: GOAL_MS,
        baselineName: "goal",
        note: `${times.length} rounds; director polls /healthz every 1 s`,
      });
    }
  } finally {
    await bed.close();
  }
}
