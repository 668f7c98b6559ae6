/**
 * Per-packet cost that does not grow with the sessions: a few hundred
 * sessions registered through the real `dnat add`, then the flow of the
 * session registered last still crosses, routed traffic of no session is
 * neither accepted nor masqueraded under a drop policy, and the kernel holds
 * a fixed number of rules on the per-packet paths whatever the count. A flow
 * something else translates to the session's server port is not taken for the
 * session's. Run
 * once per backend. Filler sessions name client addresses that never send:
 * traffic comes only from the bed's own namespaces.
 */
import { assertEquals } from "../_assert.ts";
import { must } from "../testbed/exec.ts";
import { PYTHON, ROOT } from "../testbed/paths.ts";
import { createTestbed, IP, type Testbed } from "../testbed/reverse_bed.ts";
import { sendUdp } from "../testbed/udp.ts";
import { dnatArgv } from "../../src/dnat/contract.ts";
import { parseIp } from "../../src/net/ip.ts";

const isRoot = Deno.uid() === 0;
/** Sessions registered before the measured one. */
const FILLERS = 300;
const PARALLEL = 6;
/** iptables match of the foreign DNAT: the bed's client to a proxy port no rule of ours uses. */
const FOREIGN_MATCH = ["-s", IP.client, "-p", "udp", "--dport", "40001"];

/** `dnat add` of rule 1 (proxy → server A) for a client address, owned by `owner`. */
function addArgs(client: string, owner: number): string[] {
  return dnatArgv({
    action: "add",
    request: {
      rule: 1,
      host: 0,
      server: { ip: parseIp(IP.a)!, port: 22 },
      named: { owner, client: parseIp(client)!, proxy: parseIp(IP.proxy)! },
    },
  }).slice(1);
}

async function register(bed: Testbed, clients: readonly string[], owner: number): Promise<void> {
  for (let i = 0; i < clients.length; i += PARALLEL) {
    const results = await Promise.all(
      clients.slice(i, i + PARALLEL).map((c) => bed.dnat(addArgs(c, owner))),
    );
    for (const r of results) {
      if (r.code !== 0) throw new Error(`dnat add failed: ${r.stdout}${r.stderr}`);
    }
  }
}

/** Starts the UDP echo endpoint on server A directly (no session), until `stop()`. */
function echoOnServerA(bed: Testbed): { stop(): Promise<void> } {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", bed.ns.a, PYTHON, `${ROOT}tests/udp_echo.py`, "33001"],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    async stop() {
      await child.stdin.close().catch(() => {});
      await child.status;
    },
  };
}

for (const backend of ["iptables", "nftables"] as const) {
  Deno.test({
    name: `${FILLERS} live sessions: the last one's flow passes, nothing else does (${backend})`,
    ignore: !isRoot,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      const bed = await createTestbed({ serverExtra: `<dnat_backend>${backend}</dnat_backend>` });
      const owner = bed.spawnInProxy(["sleep", "600"]);
      const echo = echoOnServerA(bed);
      const inProxy = (...argv: string[]) => must(["ip", "netns", "exec", bed.ns.proxy, ...argv]);
      try {
        const fillers = Array.from(
          { length: FILLERS },
          (_, i) => `198.18.${64 + Math.floor(i / 250)}.${(i % 250) + 1}`,
        );
        await register(bed, fillers, owner.pid);
        await register(bed, [IP.client], owner.pid);
        const listed = JSON.parse((await bed.dnat(["list", "--json"])).stdout);
        assertEquals(listed.length, FILLERS + 1);

        // Under a drop policy: iptables' own FORWARD policy (our fixed rule comes first); for
        // nftables the administrator's drop chain with the ct-mark rule docs/dnat.md gives.
        const drop = backend === "iptables" ? ["iptables", "-P", "FORWARD", "DROP"] : [
          "nft",
          "add table inet admin; add chain inet admin forward_drop { type filter hook forward priority 10; policy drop; }; " +
          "add rule inet admin forward_drop ct mark 0x78700000 accept",
        ];
        const undo = backend === "iptables"
          ? ["iptables", "-P", "FORWARD", "ACCEPT"]
          : ["nft", "delete table inet admin"];

        await t.step(
          "routed traffic of no session passes only while the policy accepts",
          async () => {
            // The control: without the drop policy the client reaches server A straight through.
            assertEquals(await sendUdp(bed, 47001, IP.a, 33001, 5), 5);
            await inProxy(...drop);
            try {
              assertEquals(await sendUdp(bed, 47002, IP.a, 33001, 5), 0);
            } finally {
              await inProxy(...undo);
            }
          },
        );

        await t.step(
          "the flow of the session registered last crosses under the drop policy",
          async () => {
            await inProxy(...drop);
            try {
              assertEquals(await sendUdp(bed, 47000, IP.proxy, 33001, 20), 20);
            } finally {
              await inProxy(...undo);
            }
            // Masqueraded: server A saw the proxy's inside address, not the client's.
            const flows = await inProxy("conntrack", "-L", "-p", "udp", "--orig-src", IP.client);
            const session = flows.split("\n").find((l) => l.includes("sport=47000"));
            assertEquals(session?.includes(`src=${IP.a} dst=${IP.proxyInside}`), true, session);
            assertEquals(session?.includes("mark=2020605952"), true, session);
          },
        );

        await t.step("routed traffic of no session is not masqueraded", async () => {
          assertEquals(await sendUdp(bed, 47003, IP.a, 33001, 5), 5);
          const flows = await inProxy("conntrack", "-L", "-p", "udp", "--orig-src", IP.client);
          const routed = flows.split("\n").find((l) => l.includes("sport=47003"));
          assertEquals(routed?.includes(`src=${IP.a} dst=${IP.client}`), true, routed);
          assertEquals(routed?.includes("mark=0"), true, routed);
        });

        await t.step(
          "a flow another rule translates to the session's server is neither accepted nor masqueraded",
          async () => {
            // An administrator's (or Docker's) DNAT, ahead of ours, from the session's own client to
            // the session's server and port: the kernel must not take it for the session's flow.
            const foreign = backend === "iptables"
              ? ["iptables", "-t", "nat", "-I", "PREROUTING", "1", ...FOREIGN_MATCH, "-j", "DNAT"]
                .concat(["--to-destination", `${IP.a}:33001`])
              : [
                "nft",
                "add table ip foreign; add chain ip foreign pre { type nat hook prerouting priority dstnat - 5; }; " +
                `add rule ip foreign pre ip saddr ${IP.client} udp dport 40001 dnat to ${IP.a}:33001`,
              ];
            const unforeign = backend === "iptables"
              ? ["iptables", "-t", "nat", "-D", "PREROUTING", ...FOREIGN_MATCH, "-j", "DNAT"]
                .concat(["--to-destination", `${IP.a}:33001`])
              : ["nft", "delete table ip foreign"];
            await inProxy(...foreign);
            try {
              await inProxy(...drop);
              try {
                assertEquals(await sendUdp(bed, 47004, IP.proxy, 40001, 5), 0);
              } finally {
                await inProxy(...undo);
              }
              // Accepted by the default policy, it crosses, but as the client: no masquerade, no mark.
              assertEquals(await sendUdp(bed, 47005, IP.proxy, 40001, 5), 5);
              const flows = await inProxy("conntrack", "-L", "-p", "udp", "--orig-src", IP.client);
              const translated = flows.split("\n").find((l) => l.includes("sport=47005"));
              assertEquals(translated?.includes(`src=${IP.a} dst=${IP.client}`), true, translated);
              assertEquals(translated?.includes("mark=0"), true, translated);
            } finally {
              await inProxy(...unforeign);
            }
          },
        );

        await t.step("the per-packet chains hold a fixed number of rules", async () => {
          if (backend === "iptables") {
            const save = await inProxy("iptables-save");
            const count = (chain: string) =>
              save.split("\n").filter((l) => l.startsWith(`-A ${chain} `)).length;
            assertEquals(count("XFERPROXY-FWD"), 1);
            assertEquals(count("XFERPROXY-POST"), 1);
            // Only a flow's first packet sees these: a mark and a DNAT rule per session.
            assertEquals(count("XFERPROXY-PRE"), 2 * (FILLERS + 1));
          } else {
            const table = JSON.parse(await inProxy("nft", "-j", "list", "table", "ip", "xferproxy"))
              .nftables as Array<Record<string, { chain?: string }>>;
            const rules = (chain: string) => table.filter((i) => i.rule?.chain === chain).length;
            // Prerouting: UDP's two lookups and TCP's for forward mode, each marking what it
            // translates; one accept and one masquerade by that mark. Fixed, whatever the count.
            assertEquals([rules("prerouting"), rules("postrouting"), rules("forward")], [3, 1, 1]);
          }
        });
      } finally {
        try {
          owner.kill("SIGKILL");
        } catch { /* gone */ }
        await owner.status;
        await echo.stop();
        await bed.close();
      }
    },
  });
}
