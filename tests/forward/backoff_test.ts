import { assertEquals } from "../_assert.ts";
import { createBackoff, LOGIN_BACKOFF } from "../../src/forward/backoff.ts";

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

Deno.test("createBackoff() holds after three failures, doubling up to five minutes", () => {
  const { now } = clock();
  const b = createBackoff(now);
  const holds: number[] = [];
  for (let i = 0; i < 14; i++) {
    b.fail("k");
    holds.push(b.heldFor("k"));
  }
  assertEquals(holds, [
    0,
    0,
    1000,
    2000,
    4000,
    8000,
    16000,
    32000,
    64000,
    128000,
    256000,
    300000,
    300000,
    300000,
  ]);
  assertEquals(b.heldFor("other"), 0);
  b.clear("k");
  assertEquals(b.heldFor("k"), 0);
});

Deno.test("createBackoff() forgets one failure per five quiet minutes", () => {
  const { now, advance } = clock();
  const b = createBackoff(now);
  // A typo every five minutes from a shared address never adds up to a hold.
  for (let i = 0; i < 20; i++) {
    b.fail("office");
    assertEquals(b.heldFor("office"), 0);
    advance(LOGIN_BACKOFF.leakMs);
  }
  // Two failures, ten quiet minutes, two more: still under three.
  b.fail("k");
  b.fail("k");
  advance(2 * LOGIN_BACKOFF.leakMs);
  b.fail("k");
  b.fail("k");
  assertEquals(b.heldFor("k"), 0);
  b.fail("k");
  assertEquals(b.heldFor("k"), 1000);
  // A hold runs out with time.
  advance(999);
  assertEquals(b.heldFor("k"), 1);
  advance(1);
  assertEquals(b.heldFor("k"), 0);
});

Deno.test("createBackoff() remembers at most maxKeys keys, dropping the quietest", () => {
  const { now, advance } = clock();
  const b = createBackoff(now, { ...LOGIN_BACKOFF, maxKeys: 3 });
  for (const key of ["a", "b", "c"]) {
    for (let i = 0; i < 3; i++) b.fail(key);
    advance(10);
  }
  b.fail("a");
  b.fail("d");
  assertEquals(b.size, 3);
  assertEquals(["a", "b", "c", "d"].map((k) => b.heldFor(k) > 0), [true, false, true, false]);
});

Deno.test("createBackoff() holds three failures a moment apart: time between them leaks nothing", () => {
  const { now, advance } = clock();
  const b = createBackoff(now);
  for (let i = 0; i < 3; i++) {
    advance(200);
    b.fail("k");
  }
  assertEquals(b.heldFor("k"), 1000);
});

Deno.test("createBackoff() drains continuously: failures 4 and 6 minutes apart never hold", () => {
  const { now, advance } = clock();
  const b = createBackoff(now);
  for (let i = 0; i < 30; i++) {
    b.fail("office");
    assertEquals(b.heldFor("office"), 0, `failure ${i + 1}`);
    advance(i % 2 ? 360_000 : 240_000);
  }
});
