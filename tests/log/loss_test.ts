import { assertEquals } from "../_assert.ts";
import { lossLine, lossTracker } from "../../src/log/loss.ts";

Deno.test("a run of failed writes is said once when it starts and once when it ends", () => {
  const loss = lossTracker();
  assertEquals(loss.written(), undefined);
  assertEquals(loss.failed("No space left on device"), {
    kind: "failing",
    error: "No space left on device",
  });
  assertEquals([loss.failed("x"), loss.failed("x")], [undefined, undefined]);
  assertEquals(loss.written(), { kind: "recovered", lost: 3 });
  assertEquals(loss.written(), undefined);
  // A second run counts on from the first.
  loss.failed("x");
  assertEquals(loss.written(), { kind: "recovered", lost: 1 });
  assertEquals(loss.lost(), 4);
});

Deno.test("the syslog lines name the file, the error and the count", () => {
  assertEquals(
    lossLine("/var/log/xferproxy/root/xferproxy.log", {
      kind: "failing",
      error: "No space left on device (os error 28)",
    }),
    {
      severity: 3,
      line:
        "Cannot write /var/log/xferproxy/root/xferproxy.log: No space left on device (os error 28); log lines are lost until it can (counted in xferproxy_log_lines_lost_total)",
    },
  );
  assertEquals(
    lossLine("/l", { kind: "recovered", lost: 1 }).line,
    "Writing /l again; 1 log line was lost",
  );
  assertEquals(lossLine("/l", { kind: "recovered", lost: 7 }), {
    severity: 5,
    line: "Writing /l again; 7 log lines were lost",
  });
});
