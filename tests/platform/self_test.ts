import { assertEquals } from "../_assert.ts";
import { parseLaunch } from "../../src/platform/self.ts";

Deno.test("parseLaunch() takes the launcher's path from argv, never from anywhere else", async (t) => {
  await t.step(
    "the launcher's first argument",
    () =>
      assertEquals(parseLaunch(["--launcher=/usr/local/bin/xferproxy", "reverse"], "/opt/deno"), {
        self: "/usr/local/bin/xferproxy",
        args: ["reverse"],
        byLauncher: true,
      }),
  );
  await t.step(
    "a compiled binary is its own path",
    () =>
      assertEquals(parseLaunch(["reverse"], "/usr/local/bin/xferproxy"), {
        self: "/usr/local/bin/xferproxy",
        args: ["reverse"],
        byLauncher: false,
      }),
  );
  await t.step(
    "only in first place: later it is an ordinary (refused) argument",
    () =>
      assertEquals(parseLaunch(["reverse", "--launcher=/tmp/x"], "/opt/deno"), {
        self: "/opt/deno",
        args: ["reverse", "--launcher=/tmp/x"],
        byLauncher: false,
      }),
  );
  await t.step(
    "an empty path is no launcher",
    () =>
      assertEquals(parseLaunch(["--launcher=", "version"], "/opt/deno"), {
        self: "/opt/deno",
        args: ["--launcher=", "version"],
        byLauncher: false,
      }),
  );
});
