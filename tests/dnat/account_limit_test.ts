import { assertEquals } from "../_assert.ts";
import { accountLimit, OVER_LIMIT_LOG_EVERY_MS } from "../../src/dnat/account_limit.ts";

Deno.test("accountLimit() counts each account apart and frees a place when a connection ends", () => {
  const limit = accountLimit(2);
  assertEquals([limit.admit(1000), limit.admit(1000), limit.admit(1000)], [true, true, false]);
  assertEquals(limit.admit(1001), true, "another account has its own places");
  limit.release(1000);
  assertEquals([limit.admit(1000), limit.admit(1000)], [true, false]);
  // Releasing more than was admitted never makes room beyond the limit.
  for (let i = 0; i < 5; i++) limit.release(1001);
  assertEquals([limit.admit(1001), limit.admit(1001), limit.admit(1001)], [true, true, false]);
});

Deno.test("accountLimit() logs an account's refusals once a minute, each account apart", () => {
  const limit = accountLimit(1);
  assertEquals(limit.logRefusal(1000, 0), true);
  assertEquals(limit.logRefusal(1000, OVER_LIMIT_LOG_EVERY_MS - 1), false);
  assertEquals(limit.logRefusal(1001, 10), true);
  assertEquals(limit.logRefusal(1000, OVER_LIMIT_LOG_EVERY_MS), true);
});
