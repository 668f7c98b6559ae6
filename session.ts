/**
 * The entry a reverse session starts by: the launcher runs it for
 * `xferproxy reverse` (sshd's ForceCommand, once per SSH session), so a
 * session the DNAT service decides loads only the light path
 * (platform/thin_session.ts); the whole program (main.ts) loads only when
 * the session must decide itself, or for anything but a plain session.
 * @module
 */

import { parseLaunch } from "./src/platform/self.ts";
import { runThinSession } from "./src/platform/thin_session.ts";

if (import.meta.main) {
  const launch = parseLaunch(Deno.args, Deno.execPath());
  const code = await runThinSession(launch.args);
  if (code !== undefined) Deno.exit(code);
  // Named by a computed URL: the runtime loads the graph of every literal import() before it
  // runs anything, which for the whole program is ~20 ms of every session's start.
  const program = new URL(
    import.meta.url.endsWith(".ts") ? "./main.ts" : "./main.js",
    import.meta.url,
  );
  const { launchMain } = await import(program.href) as typeof import("./main.ts");
  await launchMain(launch);
}
