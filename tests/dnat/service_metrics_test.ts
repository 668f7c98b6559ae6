import { assertEquals, assertIncludes } from "../_assert.ts";
import { serviceMetrics } from "../../src/dnat/service_metrics.ts";
import { emptyRegistry, type Registry } from "../../src/dnat/registry.ts";

function registryOf(rules: number[]): Registry {
  const empty = emptyRegistry();
  return {
    ...empty,
    entries: rules.map((rule, i) => ({ id: `id-${i}`, rule }) as unknown as Registry["entries"][0]),
  };
}

Deno.test("active sessions: every configured rule has its series, 0 included; the forward daemon's are not reverse sessions", () => {
  const metrics = serviceMetrics({ version: "v", backend: "iptables" }, 0);
  metrics.active(registryOf([1, 1, 0, 3]), 3);
  const text = metrics.registry.render();
  for (
    const want of [
      'xferproxy_reverse_sessions_active{rule="1"} 2\n',
      'xferproxy_reverse_sessions_active{rule="2"} 0\n',
      'xferproxy_reverse_sessions_active{rule="3"} 1\n',
    ]
  ) assertIncludes(text, want);
  assertEquals(text.includes('xferproxy_reverse_sessions_active{rule="0"}'), false);
  // A rule gone from the config loses its series when its sessions end.
  metrics.active(registryOf([]), 1);
  assertEquals(metrics.registry.render().includes('rule="3"'), false);
  metrics.ended({ rule: 0, reason: "removed" });
  assertEquals(metrics.registry.render().includes('rule="0"'), false);
});

Deno.test("stale flows removed: added up from 0, one series", () => {
  const metrics = serviceMetrics({ version: "v", backend: "iptables" }, 0);
  assertIncludes(metrics.registry.render(), "xferproxy_stale_flows_removed_total 0\n");
  metrics.staleFlowsRemoved(3);
  metrics.staleFlowsRemoved(500);
  assertIncludes(metrics.registry.render(), "xferproxy_stale_flows_removed_total 503\n");
});
