/**
 * A session process opening a shared file `count` times (more, up to 20 s, until
 * both outcomes are seen) while the test swaps FIFOs in and out of its place:
 * `log` appends a line to `<dir>/xferproxy.log`, `balancer` updates
 * `<dir>/balancer.json`. Prints how many opens worked and how many were
 * refused; a FIFO opened blocking would never let it print.
 */
// deno-lint-ignore-file no-console
import { openSharedAppend } from "../../../src/platform/shared_files.ts";
import { openSharedJson } from "../../../src/platform/locked_file.ts";

const [kind = "log", dir = "", count = "1"] = Deno.args;
const shared = openSharedJson(dir, "balancer");
let opened = 0;
let refused = 0;
// At least `count` opens; on a loaded host the swapper may not have raced them yet, so more, until
// both outcomes are seen, for at most 20 s.
const until = Date.now() + 20_000;
for (
  let i = 0;
  i < Number(count) || ((opened === 0 || refused === 0) && Date.now() < until);
  i++
) {
  try {
    if (kind === "log") {
      const file = openSharedAppend(`${dir}/xferproxy.log`);
      file.write("a session's line\n");
      file.close();
    } else {
      await shared.update((current) => ({ value: current ?? {}, result: undefined }));
    }
    opened++;
  } catch (error) {
    if ((error as Error).name !== "NotRegularFileError") throw error;
    refused++;
  }
}
console.log(JSON.stringify({ opened, refused }));
// Ends as every xferproxy process does (main.ts), through Deno.exit. Ending by running out of work
// instead, one run in about 550 under load died with SIGSEGV after printing this line: a crash in
// one of the runtime's threads while it tore the isolate down (core dump, no symbols to say more);
// none in 700 runs that ended through Deno.exit.
Deno.exit(0);
