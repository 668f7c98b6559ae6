import { assertEquals } from "../_assert.ts";
import { firstTimes } from "../../src/log/once.ts";

Deno.test("firstTimes() lets each text through once, and at most max distinct texts", () => {
  const firstTime = firstTimes(2);
  assertEquals(["a", "a", "b", "a", "c", "b"].map(firstTime), [
    true,
    false,
    true,
    false,
    false,
    false,
  ]);
});
