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
  const [{ main }, { realOutput }] = await Promise.all([
    import("./main.ts"),
    import("./src/platform/output.ts"),
  ]);
  Deno.exit(await main(launch.args, realOutput, launch.self));
}
