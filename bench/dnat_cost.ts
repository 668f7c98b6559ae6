/**
 * DNAT add/delete latency with 0, 100 and 1000 live sessions, per backend.
 * Run as root inside a throwaway network namespace (bench.ts does); prints JSON.
 * Times what a privileged call does that grows with the live sessions: the
 * registry read, one netfilter transaction and the registry write, under the
 * DNAT lock. Process start-up and the owner check are constant and timed
 * apart by bench.ts (the full CLI).
 */
// deno-lint-ignore-file no-console
import { iptablesBackend } from "../src/dnat/iptables/backend.ts";
import { nftablesBackend, nftCommandRunner } from "../src/dnat/nftables/backend.ts";
import {
  forwardedSessions,
  type ForwardingEntry,
  withEntry,
  withoutSessions,
} from "../src/dnat/registry.ts";
import type { DnatBackend } from "../src/dnat/types.ts";
import { prepareDnatDirectory, registryStore } from "../src/platform/dnat_host.ts";
import { realRunner } from "../src/platform/runner.ts";
import { openNft } from "../src/platform/libnftables.ts";
import { syntheticEntry } from "./_measure.ts";
import { median } from "./_report.ts";

const ROUNDS = 10;

function entry(i: number): ForwardingEntry {
  return syntheticEntry(i, { pid: Deno.pid, start: 1 }, "198.18.1.1", "198.18.2.2");
}

const state = await Deno.makeTempDir({ prefix: "xferproxy-dnat-cost-" });
await Deno.chmod(state, 0o755);
const store = registryStore(await prepareDnatDirectory(state), (m) => console.error(m));
const results: Array<{ backend: string; live: number; add_ms: number; del_ms: number }> = [];
try {
  // "nftables" is libnftables in-process, as the DNAT service runs it; "nft command" the
  // fallback where the library is not at a known path.
  const backends: Record<string, () => DnatBackend> = {
    iptables: () => iptablesBackend(realRunner),
    nftables: () => nftablesBackend(openNft(realRunner)),
    "nft command": () => nftablesBackend(nftCommandRunner(realRunner)),
  };
  for (const [name, make] of Object.entries(backends)) {
    const backend = make();
    for (const live of [0, 100, 1000]) {
      await backend.teardown().catch(() => {});
      await backend.ensureReady(4);
      const preload = Array.from({ length: live }, (_, i) => entry(i));
      for (let i = 0; i < preload.length; i += 200) {
        await backend.add(preload.slice(i, i + 200).map((e) => e.forwarding.session));
      }
      await store.write({ entries: preload });
      const adds: number[] = [];
      const dels: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const e = entry(5000 + r);
        let t = performance.now();
        await store.lock(async () => {
          const registry = await store.read();
          await backend.add([e.forwarding.session]);
          await store.write(withEntry(registry, e));
        });
        adds.push(performance.now() - t);
        t = performance.now();
        await store.lock(async () => {
          const registry = await store.read();
          const after = withoutSessions(registry, new Set([e.id]));
          await backend.remove([e.forwarding.session], forwardedSessions(after));
          await store.write(after);
        });
        dels.push(performance.now() - t);
      }
      results.push({ backend: name, live, add_ms: median(adds), del_ms: median(dels) });
      await backend.teardown();
    }
  }
} finally {
  await Deno.remove(state, { recursive: true });
}
console.log(JSON.stringify(results));
