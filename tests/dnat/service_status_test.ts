import { assertEquals, assertIncludes, assertMatch } from "../_assert.ts";
import { judgeHealth } from "../../src/dnat/health.ts";
import { observeService, type ServiceState } from "../../src/dnat/service_status.ts";
import { statusResponse } from "../../src/dnat/status_api.ts";
import { fakeBackend } from "../_fakes/dnat.ts";
import { dnatSession } from "./_build.ts";

Deno.test("health: draining first, then the socket, netfilter and the config; ok otherwise", () => {
  assertEquals(judgeHealth({ listening: true }), { status: 200, line: "ok" });
  const all = {
    listening: false,
    netfilterError: "add failed: iptables: No chain",
    configError: "bad tag",
    drainedSince: Date.UTC(2026, 11, 5),
  };
  assertEquals(
    judgeHealth(all).line,
    "draining since 2026-12-05T00:00:00.000Z: new sessions are refused",
  );
  const { drainedSince: _, ...down } = all;
  assertEquals(judgeHealth(down), { status: 503, line: "the session socket is not listening" });
  assertEquals(
    judgeHealth({ ...down, listening: true }).line,
    "netfilter: add failed: iptables: No chain",
  );
  assertEquals(judgeHealth({ listening: true, configError: "bad tag" }).line, "config: bad tag");
});

function observed(state: Partial<ServiceState> = {}) {
  const backend = fakeBackend();
  let now = 1_000;
  const observation = observeService(backend, () => now, () => ({
    listening: true,
    configError: () => undefined,
    drained: () => undefined,
    ...state,
  }));
  return { backend, observation, tick: (ms: number) => void (now += ms) };
}

Deno.test("netfilter changes and failures are counted; two failures in a row make /healthz 503 until a change works", async () => {
  const { backend, observation, tick } = observed();
  const add = backend.add;
  assertEquals(observation.netfilterAnsweredAt(), -Infinity);
  await observation.backend.add([dnatSession()]);
  assertEquals(observation.netfilterAnsweredAt(), 1_000);
  tick(500);
  // A read does not count as netfilter answering changes.
  await observation.backend.list();
  assertEquals(observation.netfilterAnsweredAt(), 1_000);
  backend.remove = () =>
    Promise.reject(new Error("iptables: No chain/target/match by that name.\nmore"));
  await observation.backend.remove([dnatSession()], []).catch(() => {});
  // One failed change is not a sick node.
  assertEquals(observation.health().status, 200);
  await observation.backend.remove([dnatSession()], []).catch(() => {});
  assertEquals(observation.health(), {
    status: 503,
    line: "netfilter: remove failed: iptables: No chain/target/match by that name.",
  });
  // Reads that work do not hide changes that fail.
  await observation.backend.list();
  assertEquals(observation.health().status, 503);
  const text = observation.status.metrics();
  assertIncludes(text, 'xferproxy_netfilter_changes_total{op="add"} 1\n');
  assertIncludes(text, 'xferproxy_netfilter_failures_total{op="remove"} 2\n');
  assertEquals(text.includes('op="list"'), false);
  // The probe (or any change) that works clears it.
  await observation.backend.ensureReady(4);
  assertEquals(observation.health().status, 200);
  assertEquals(add, backend.add);
});

Deno.test("a reconcile counts as a change only when it put something back", async () => {
  const { backend, observation } = observed();
  const session = dnatSession();
  await observation.backend.add([session]);
  await observation.backend.reconcile([session]);
  assertEquals(observation.status.metrics().includes('op="reconcile"'), false);
  backend.flush();
  await observation.backend.reconcile([session]);
  assertIncludes(
    observation.status.metrics(),
    'xferproxy_netfilter_changes_total{op="reconcile"} 1\n',
  );
});

Deno.test("/metrics, /healthz and nothing else; GET or HEAD only", async () => {
  const node: { drained?: { since: number; reason: string } } = {};
  const { observation } = observed({ drained: () => node.drained });
  const ask = (path: string, method = "GET") =>
    statusResponse(new Request(`http://198.18.5.1:9094${path}`, { method }), observation.status);
  const metrics = ask("/metrics");
  assertEquals(metrics.status, 200);
  assertMatch(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  assertMatch(await metrics.text(), /^# HELP xferproxy_build_info /);
  assertEquals([ask("/healthz").status, await ask("/healthz").text()], [200, "ok\n"]);
  node.drained = { since: Date.UTC(2026, 0, 1), reason: "kernel update" };
  const healthz = ask("/healthz");
  assertEquals(healthz.status, 503);
  assertMatch(
    await healthz.text(),
    /^draining since 2026-01-01T00:00:00\.000Z \(kernel update\): new sessions are refused\n$/,
  );
  assertEquals(ask("/healthz", "HEAD").status, 503);
  assertEquals(ask("/healthz", "POST").status, 405);
  assertEquals(ask("/healthz", "POST").headers.get("allow"), "GET, HEAD");
  assertEquals(ask("/").status, 404);
  assertEquals(ask("/metrics/../etc").status, 404);
});
