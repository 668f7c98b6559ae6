/**
 * The balancer state is shared by concurrent session processes through a
 * locked file: no pick is lost or duplicated, and a corrupt file is survived.
 */
import { assertEquals } from "../_assert.ts";
import { run } from "../testbed/exec.ts";
import { probeArgv, tempDir } from "../testbed/paths.ts";

const PROCESSES = 6;
const PICKS = 15;

async function probe(
  dir: string,
  picks: number,
  warnings: string[] = [],
): Promise<number[] | { error: string }> {
  const result = await run(probeArgv("balancer_probe.ts", dir, [dir, String(picks)]), {
    timeoutMs: 60_000,
  });
  assertEquals(result.code, 0, result.stderr);
  warnings.push(...result.stderr.split("\n").filter(Boolean));
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
    const warnings: string[] = [];
    assertEquals(await probe(dir.path, 3, warnings), [0, 1, 2]);
    // Said once, when it was found; the picks then rewrote it.
    assertEquals(warnings, [`corrupt ${dir.path}/balancer.json: SyntaxError`]);
    await Deno.remove(`${dir.path}/balancer.json`);
    assertEquals(await probe(dir.path, 1), [0]);
  } finally {
    await dir.remove();
  }
});

Deno.test("symlinks and hard links planted in the shared state directory are never followed", async () => {
  const dir = await tempDir();
  const state = `${dir.path}/balancer`;
  const victim = `${dir.path}/victim`;
  try {
    await Deno.mkdir(state, { mode: 0o770 });
    await Deno.writeTextFile(victim, "someone's file\n", { mode: 0o600 });
    await Deno.chmod(victim, 0o600);
    await Deno.symlink(victim, `${state}/balancer.json`);
    assertEquals(await probe(state, 1), {
      error:
        `"${state}/balancer.json" is a symbolic link or not a regular file; refusing to use it`,
    });
    await Deno.remove(`${state}/balancer.json`);
    // A hard link to another file: its content is not taken for the state.
    await Deno.link(victim, `${state}/balancer.json`);
    assertEquals(await probe(state, 1), {
      error: `"${state}/balancer.json" has 2 hard links; it must have one; refusing to use it`,
    });
    await Deno.remove(`${state}/balancer.json`);
    // The lock is the directory itself: a file named like the old lock file is never opened, and
    // a dangling symlink there creates nothing.
    await Deno.symlink(`${dir.path}/made`, `${state}/balancer.lock`);
    assertEquals(await probe(state, 1), [0]);
    assertEquals(await Deno.stat(`${dir.path}/made`).then(() => true, () => false), false);
    assertEquals(await Deno.readTextFile(victim), "someone's file\n");
    assertEquals((await Deno.stat(victim)).mode! & 0o777, 0o600);
  } finally {
    await dir.remove();
  }
});
