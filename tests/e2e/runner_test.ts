/**
 * The real runner bounds every program it runs: one that would wait forever (a netfilter tool
 * on a lock another process holds) is killed, and its caller gets a failed status, not a hang.
 */
import { assertEquals } from "../_assert.ts";
import { boundedRunner } from "../../src/platform/runner.ts";

Deno.test("a program running past the bound is killed and reported failed", async () => {
  const started = Date.now();
  const result = await boundedRunner(300).run("sleep", ["30"]);
  assertEquals(result.code === 0, false);
  assertEquals(Date.now() - started < 10_000, true, `${Date.now() - started} ms`);
  // With input too (iptables-restore reads its rules from stdin).
  const fed = await boundedRunner(300).run("sleep", ["30"], { stdin: "x\n" });
  assertEquals(fed.code === 0, false);
  assertEquals(Date.now() - started < 20_000, true, `${Date.now() - started} ms`);
});

Deno.test("a program within the bound runs as before", async () => {
  assertEquals(await boundedRunner(10_000).run("sh", ["-c", "sleep 0.1; echo done"]), {
    code: 0,
    stdout: "done\n",
    stderr: "",
  });
});
