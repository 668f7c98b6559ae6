import { assertEquals } from "../_assert.ts";
import {
  emptyState,
  markFaulty,
  normalizeState,
  pickHosts,
} from "../../src/balancer/round_robin.ts";
import { createBalancer } from "../../src/balancer/balancer.ts";
import type { SharedJson } from "../../src/balancer/shared_json.ts";

const HOSTS = ["198.18.2.2:22", "198.18.2.3:22", "198.18.2.4:22"];

Deno.test("pickHosts() rotates the starting host one step per session", () => {
  let state = emptyState();
  const starts: number[] = [];
  for (let i = 0; i < 7; i++) {
    const pick = pickHosts(state, "rule1", HOSTS, 0);
    starts.push(pick.order[0]!);
    assertEquals(pick.order.length, 3);
    state = pick.state;
  }
  assertEquals(starts, [0, 1, 2, 0, 1, 2, 0]);
  assertEquals(pickHosts(state, "rule2", HOSTS, 0).order, [0, 1, 2]);
});

Deno.test("pickHosts() skips faulty hosts until their mark expires (fake clock)", () => {
  let state = markFaulty(emptyState(), HOSTS[1]!, 1_000, 120);
  const during = pickHosts(state, "r", HOSTS, 1_000 + 119_999);
  assertEquals(during.order, [0, 2]);
  assertEquals(during.skipped, [{ index: 1, until: 121_000 }]);
  state = during.state;
  const next = pickHosts(state, "r", HOSTS, 100_000);
  assertEquals(next.order, [2, 0]);
  const after = pickHosts(next.state, "r", HOSTS, 121_000);
  assertEquals(after.order, [2, 0, 1]);
  assertEquals(after.state.faulty, {});
});

Deno.test("pickHosts() returns an empty order when every host is faulty", () => {
  let state = emptyState();
  for (const h of HOSTS) state = markFaulty(state, h, 0, 120);
  const pick = pickHosts(state, "r", HOSTS, 1);
  assertEquals(pick.order, []);
  assertEquals(pick.skipped.map((s) => s.index), [0, 1, 2]);
});

Deno.test("normalizeState() survives corrupt or hostile state", async (t) => {
  const cases: unknown[] = [undefined, null, 42, "x", [], { rotations: "x" }, {
    rotations: { a: -1, b: 1.5, c: "2" },
    faulty: null,
  }];
  for (const raw of cases) {
    await t.step(
      JSON.stringify(raw) ?? "undefined",
      () => assertEquals(normalizeState(raw), emptyState()),
    );
  }
  assertEquals(normalizeState({ rotations: { a: 2 }, faulty: { h: 5 }, extra: 1 }), {
    rotations: { a: 2 },
    faulty: { h: 5 },
  });
});

Deno.test("createBalancer() keeps rotation and marks in the shared store", async () => {
  let stored: unknown = "not json at all";
  const store: SharedJson = {
    update(change) {
      const { value, result } = change(stored);
      stored = JSON.parse(JSON.stringify(value));
      return Promise.resolve(result);
    },
  };
  let now = 0;
  const balancer = createBalancer(store, () => now);
  assertEquals((await balancer.pick("r", HOSTS)).order[0], 0);
  await balancer.markFaulty(HOSTS[1]!, 120);
  assertEquals((await balancer.pick("r", HOSTS)).order, [2, 0]);
  now = 121_000;
  assertEquals((await balancer.pick("r", HOSTS)).order, [2, 0, 1]);
  assertEquals(stored, { rotations: { r: 0 }, faulty: {} });
});

Deno.test("pickHosts() cuts a mark far in the future back to two minutes from now", () => {
  const forged = { rotations: {}, faulty: { [HOSTS[0]!]: Number.MAX_SAFE_INTEGER } };
  const now = 5_000_000;
  const first = pickHosts(forged, "r", HOSTS, now);
  assertEquals(first.skipped, [{ index: 0, until: now + 120_000 }]);
  assertEquals(first.state.faulty[HOSTS[0]!], now + 120_000);
  // Two minutes later the host is back.
  assertEquals(pickHosts(first.state, "r", HOSTS, now + 120_000).order.includes(0), true);
});
