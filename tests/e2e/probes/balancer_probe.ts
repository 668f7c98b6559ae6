/**
 * One session process's worth of balancer use against a real state directory:
 * picks `count` times for a three-host rule and prints the starting hosts.
 */
// deno-lint-ignore-file no-console
import { createBalancer } from "../../../src/balancer/balancer.ts";
import { openSharedJson } from "../../../src/platform/locked_file.ts";

const [dir = "", count = "1"] = Deno.args;
const balancer = createBalancer(
  openSharedJson(dir, "balancer", (path, error) => console.error(`corrupt ${path}: ${error.name}`)),
  () => Date.now(),
);
const starts: number[] = [];
try {
  for (let i = 0; i < Number(count); i++) {
    starts.push((await balancer.pick("rule", ["h0", "h1", "h2"])).order[0] as number);
  }
  console.log(JSON.stringify(starts));
} catch (error) {
  // What a session would log before going on in list order.
  console.log(JSON.stringify({ error: (error as Error).message }));
}
