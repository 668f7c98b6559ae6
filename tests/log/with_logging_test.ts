import { assertEquals, assertRejects } from "../_assert.ts";
import { logger, withLogging } from "../../src/log/mod.ts";
import { recordLogs } from "../_fakes/logs.ts";

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
