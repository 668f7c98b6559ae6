/**
 * DNAT add/delete latency with 0, 100 and 1000 live sessions, per backend.
 * Run as root inside a throwaway network namespace (bench.ts does); prints JSON.
 * Measures the library calls the helper makes (one transaction each), so
 * process start-up is not in the numbers; bench.ts times the full CLI apart.
 */
// deno-lint-ignore-file no-console
import { iptablesBackend } from "../src/dnat/iptables.ts";
import { nftablesBackend } from "../src/dnat/nftables.ts";
import { restoreText, sessionRules } from "../src/dnat/iptables_plan.ts";
import { addLine, natElements, registryComment } from "../src/dnat/nft_plan.ts";
import { type DnatSession, toInstalled } from "../src/dnat/types.ts";
import { parseIp } from "../src/net/ip.ts";
import { realRunner } from "../src/platform/runner.ts";

const ROUNDS = 10;

function session(i: number): DnatSession {
  return {
    id: crypto.randomUUID(),
    owner: Deno.pid,
    client: parseIp(`198.18.${100 + (i >> 8)}.${i & 255}`)!,
    proxy: parseIp("198.18.1.1")!,
    proxyPort: 33001,
    server: parseIp("198.18.2.2")!,
    serverPort: 33001,
  };
}

async function preload(backend: "iptables" | "nftables", n: number): Promise<void> {
  if (n === 0) return;
  const sessions = Array.from({ length: n }, (_, i) => session(i));
  if (backend === "iptables") {
    const text = restoreText([], sessions.flatMap(sessionRules));
    const r = await realRunner.run("iptables-restore", ["--noflush", "--wait"], { stdin: text });
    if (r.code !== 0) throw new Error(r.stderr);
    return;
  }
  const lines = sessions.flatMap((s, i) => [
    addLine(4, { set: "sessions", key: String(i + 1), comment: registryComment(s) }),
    ...natElements(toInstalled(s)).map((e) => addLine(4, e)),
  ]);
  const r = await realRunner.run("nft", ["-f", "-"], { stdin: lines.join("\n") + "\n" });
  if (r.code !== 0) throw new Error(r.stderr);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const results: Array<{ backend: string; live: number; add_ms: number; del_ms: number }> = [];
for (const name of ["iptables", "nftables"] as const) {
  const backend = name === "iptables" ? iptablesBackend(realRunner) : nftablesBackend(realRunner);
  for (const live of [0, 100, 1000]) {
    await backend.teardown().catch(() => {});
    if (name === "iptables") {
      // teardown only drops empty chains: flush ours first
      await realRunner.run("iptables", ["-t", "nat", "-F", "XFERPROXY-PRE"]);
    }
    await backend.ensureReady(4);
    await preload(name, live);
    const adds: number[] = [];
    const dels: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const s = session(5000 + r);
      let t = performance.now();
      await backend.add(s);
      adds.push(performance.now() - t);
      t = performance.now();
      await backend.remove(new Set([s.id]));
      dels.push(performance.now() - t);
    }
    results.push({ backend: name, live, add_ms: median(adds), del_ms: median(dels) });
    const all = await backend.list();
    await backend.remove(new Set(all.map((s) => s.id)));
    await backend.teardown();
  }
}
console.log(JSON.stringify(results));
