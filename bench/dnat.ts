/**
 * DNAT cost: what one session's add and delete cost with 0, 100 and 1000
 * live sessions (bench/dnat_cost.ts, in a throwaway namespace), and the
 * whole privileged call as a session runs it.
 * @module
 */
// deno-lint-ignore-file no-console
import { namespaceName } from "../tests/testbed/prefix.ts";
import { BINARY, must, ROOT, run } from "../tests/testbed/mod.ts";
import { dnatArgv } from "../src/dnat/contract.ts";
import { parseIp } from "../src/net/ip.ts";
import { median, type Report } from "./_report.ts";
import { denoScriptInNs, timed } from "./_measure.ts";

/** DNAT add/delete cost with 0, 100 and 1000 live sessions, and the whole CLI call. */
export async function dnatBenchmarks(report: Report): Promise<void> {
  console.log("DNAT cost: add and delete with 0, 100, 1000 live sessions");
  const ns = namespaceName("b");
  await must(["ip", "netns", "add", ns]);
  try {
    const out = await must(denoScriptInNs(ns, `${ROOT}bench/dnat_cost.ts`), { timeoutMs: 600_000 });
    const results = JSON.parse(out) as Array<
      { backend: string; live: number; add_ms: number; del_ms: number }
    >;
    report.extra.dnat_cost = results;
    for (const backend of ["iptables", "nftables", "nft command"]) {
      const base = results.find((r) => r.backend === backend && r.live === 0)!;
      for (const live of [100, 1000]) {
        const r = results.find((x) => x.backend === backend && x.live === live)!;
        report.add({
          section: "DNAT cost",
          metric: `${backend} add, ${live} live`,
          unit: "ms",
          candidate: r.add_ms,
          baseline: base.add_ms,
          baselineName: "0 live",
        });
        report.add({
          section: "DNAT cost",
          metric: `${backend} delete, ${live} live`,
          unit: "ms",
          candidate: r.del_ms,
          baseline: base.del_ms,
          baselineName: "0 live",
        });
      }
    }
    // The whole helper as a session runs it (process start-up included), once per backend.
    await must(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    const confDir = await Deno.makeTempDir();
    await Deno.chmod(confDir, 0o755);
    const conf = `${confDir}/a.conf`;
    await Deno.writeTextFile(
      conf,
      `<server><state_directory>/run/xferproxy-bench</state_directory><rproxy><enabled>true</enabled><rules><rule><host>198.18.2.2</host><keyfile>/k</keyfile><src_port_filtering>false</src_port_filtering></rule></rules></rproxy></server>`,
    );
    const cli: number[] = [];
    for (let r = 0; r < 5; r++) {
      cli.push(
        await timed([
          "ip",
          "netns",
          "exec",
          ns,
          BINARY,
          ...dnatArgv({
            action: "add",
            request: {
              rule: 1,
              host: 0,
              server: { ip: parseIp("198.18.2.2")!, port: 22 },
              named: {
                owner: 1,
                client: parseIp(`198.18.9.${r + 1}`)!,
                proxy: parseIp("198.18.1.1")!,
              },
            },
          }),
          "--config",
          conf,
        ]) * 1000,
      );
    }
    report.extra.dnat_cli_add_ms = Number(median(cli).toFixed(1));
    console.log(
      `  dnat add through the CLI (process start-up included): ${report.extra.dnat_cli_add_ms} ms`,
    );
  } finally {
    await run(["ip", "netns", "del", ns]);
  }
}
