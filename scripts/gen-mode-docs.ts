/**
 * Writes xferproxy.1 and the bash completion into a directory, from the table of modes in
 * main.ts (scripts/dist/mode_docs.ts). make dist runs it for every package build, so they
 * cannot go stale. Usage: deno run --allow-write=DIR scripts/gen-mode-docs.ts DIR DATE
 */
import { MODES } from "../main.ts";
import { overview } from "../src/cli/help.ts";
import { VERSION } from "../src/version.ts";
import { bashCompletion, manPage } from "./dist/mode_docs.ts";

const [dir, date] = Deno.args;
if (!dir || !date || !/^\d{4}-\d\d-\d\d$/.test(date)) {
  throw new Error("usage: gen-mode-docs.ts DIR YYYY-MM-DD");
}
await Deno.writeTextFile(`${dir}/xferproxy.1`, manPage(MODES, overview(MODES), VERSION, date));
await Deno.writeTextFile(`${dir}/xferproxy.bash`, bashCompletion(MODES));
