/**
 * The balancer state is shared by concurrent session processes through a
 * locked file: no pick is lost or duplicated, and a corrupt file is survived.
 */
import { assertEquals } from "../_assert.ts";
import { run } from "./_exec.ts";
import { ROOT, tempDir } from "./_run.ts";

const PROCESSES = 6;
const PICKS = 15;

async function probe(dir: string, picks: number): Promise<number[]> {
  const result = await run([
    `${ROOT}.tools/bin/deno`,
    "run",
    "--quiet",
    "--cached-only",
    "--config",
    `${ROOT}deno.json`,
    `--allow-read=${dir}`,
    `--allow-write=${dir}`,
    `${ROOT}tests/e2e/probes/balancer_probe.ts`,
    dir,
    String(picks),
  ], { timeoutMs: 60_000 });
  assertEquals(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

Deno.test("concurrent session processes share one rotation without losing a pick", async () => {
  const dir = await tempDir();
  try {
    const all = (await Promise.all(Array.from({ length: PROCESSES }, () => probe(dir.path, PICKS))))
      .flat();
    assertEquals(all.length, PROCESSES * PICKS);
    // Serialized increments of one counter: each host starts exactly a third of the sessions.
    const perHost = [0, 1, 2].map((h) => all.filter((s) => s === h).length);
    assertEquals(perHost, [30, 30, 30]);
    const state = JSON.parse(await Deno.readTextFile(`${dir.path}/balancer.json`));
    assertEquals(state.rotations.rule, (PROCESSES * PICKS) % 3);
  } finally {
    await dir.remove();
  }
});

Deno.test("a corrupt or missing state file never stops sessions", async () => {
  const dir = await tempDir();
  try {
    await Deno.writeTextFile(`${dir.path}/balancer.json`, "{ not json");
    assertEquals(await probe(dir.path, 3), [0, 1, 2]);
    await Deno.remove(`${dir.path}/balancer.json`);
    assertEquals(await probe(dir.path, 1), [0]);
  } finally {
    await dir.remove();
  }
});
