/** docs/metrics.md lists exactly the families the DNAT service serves, with their types. */
import { assertEquals } from "../_assert.ts";
import { serviceMetrics } from "../../src/dnat/service_metrics.ts";
import { ROOT } from "../testbed/paths.ts";

Deno.test("docs/metrics.md lists every family of the DNAT service's /metrics, and no other", () => {
  const served = serviceMetrics({ version: "v", backend: "iptables" }, 0).registry.render()
    .split("\n")
    .filter((l) => l.startsWith("# TYPE "))
    .map((l) => l.slice("# TYPE ".length));
  const doc = Deno.readTextFileSync(`${ROOT}docs/metrics.md`);
  const documented = [...doc.matchAll(/^\| `(xferproxy_[a-z_]+)` +\| (\w+) +\|/gm)]
    .map(([, name, type]) => `${name} ${type}`);
  assertEquals(documented.toSorted(), served.toSorted());
  assertEquals(served.length > 10, true);
});
