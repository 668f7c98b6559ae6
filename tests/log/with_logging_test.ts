import { assertEquals, assertRejects } from "../_assert.ts";
import { logger, type OpenLogs, withLogging } from "../../src/log/mod.ts";
import { ServiceStartError, UserError } from "../../src/errors.ts";
import { reportError } from "../../src/cli/report.ts";
import { recordLogs } from "../_fakes/logs.ts";
import { captureOutput } from "../_fakes/output.ts";

Deno.test("withLogging() logs where the config says and closes the outputs after", async () => {
  const logs = recordLogs();
  const result = await withLogging({ logLevel: 0, logDirectory: "/var/log/x" }, logs.open, () => {
    logger("test").info("one line");
    return 42;
  });
  assertEquals(result, 42);
  assertEquals(logs.events.map((e) => e.replace(/^log .*: /, "log ")), [
    "open /var/log/x",
    "log LOG one line",
    "close",
  ]);
});

Deno.test("withLogging() without a config logs to syslog at level 0", async () => {
  const logs = recordLogs();
  await withLogging(undefined, logs.open, () => {
    logger("test").debug("hidden");
    logger("test").error("shown");
  });
  assertEquals(logs.events, ["open syslog", "log ERR shown", "close"]);
});

Deno.test("withLogging() closes the outputs when the work fails, and passes the error on", async () => {
  const logs = recordLogs();
  await assertRejects(
    () =>
      withLogging(undefined, logs.open, () => {
        throw new RangeError("the work failed");
      }),
    RangeError,
    "the work failed",
  );
  assertEquals(logs.events, ["open syslog", "close"]);
});

Deno.test("withLogging() cleans up when set-up fails: nothing left configured", async () => {
  await assertRejects(
    () =>
      withLogging(undefined, () => {
        throw new Error("cannot open the log");
      }, () => "never"),
    Error,
    "cannot open the log",
  );
  // The next set-up starts clean and works.
  const logs = recordLogs();
  await withLogging(undefined, logs.open, () => logger("test").error("after"));
  assertEquals(logs.events, ["open syslog", "log ERR after", "close"]);
});

Deno.test("withLogging() logs a daemon's start failure once, as Aspera Proxy's line", async (t) => {
  await t.step("to syslog: main.ts still prints it on stderr", async () => {
    const logs = recordLogs();
    const error = await assertRejects(
      () =>
        withLogging(undefined, logs.open, () => {
          throw ServiceStartError.from(new UserError("iptables-save is not installed"));
        }),
      ServiceStartError,
    );
    assertEquals(logs.events, [
      "open syslog",
      "log ERR Failed to initialize proxy service: iptables-save is not installed",
      "close",
    ]);
    assertEquals(error.shown, false);
  });
  await t.step("to stderr too: main.ts prints nothing more", async () => {
    const logs = recordLogs();
    const stderr: string[] = [];
    const open: OpenLogs = (dir) => ({ ...logs.open(dir), stderr: (line) => stderr.push(line) });
    const error = await assertRejects(
      () =>
        withLogging(undefined, open, () => {
          throw ServiceStartError.from(new UserError("no chains"));
        }),
      ServiceStartError,
    );
    assertEquals(stderr, ["xferproxy: ERR Failed to initialize proxy service: no chains"]);
    assertEquals(error.shown, true);
    const output = captureOutput();
    assertEquals(reportError(error, output), 1);
    assertEquals(output.stderr, "");
  });
});
