import { assertEquals, assertMatch } from "../_assert.ts";
import { drainedText, formatDrainMark, parseDrainMark } from "../../src/dnat/drain.ts";

Deno.test("the drain mark survives its file; a damaged file still drains", () => {
  const mark = { since: 1_796_000_000_000, reason: "kernel update" };
  assertEquals(parseDrainMark(formatDrainMark(mark), 5), mark);
  assertEquals(parseDrainMark(formatDrainMark({ since: 7 }), 5), { since: 7 });
  for (const damaged of ["", "{", "null", '{"since":-1}', '{"since":"x"}', "[]"]) {
    assertEquals(parseDrainMark(damaged, 5), { since: 5 }, damaged);
  }
  // A reason too long (written by hand) is cut, not trusted whole.
  const long = parseDrainMark(JSON.stringify({ since: 1, reason: "x".repeat(500) }), 5);
  assertEquals(long.reason?.length, 200);
});

Deno.test("dnat drain says what happens to new and running sessions, and how to undo it", () => {
  const text = drainedText({ since: Date.UTC(2026, 11, 5, 6) }, 3, false);
  assertMatch(text, /^drained since 2026-12-05T06:00:00\.000Z: new reverse sessions are refused/);
  assertMatch(text, /3 running sessions go on\. xferproxy dnat undrain takes sessions again\.\n$/);
  assertMatch(
    drainedText({ since: 0 }, 1, true),
    /^already drained since .* 1 running session go on/,
  );
});
