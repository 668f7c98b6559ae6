/**
 * The directors' own failover (docs/scale-out.md): two directors run director.sh and keepalived
 * with examples/scale-out/keepalived.conf. The master holds the VIP and the nodes' gateway; a
 * director whose check of the nodes fails, whose keepalived is killed, or that drops off the
 * network hands both to the other within 10 s, and new sessions through the VIP still reach nodes.
 */
import { assertEquals, assertMatch } from "../_assert.ts";
import { must, waitFor } from "../testbed/exec.ts";
import { SCALE_IP } from "../testbed/scale_bed.ts";
import {
  createVrrpBed,
  KEEPALIVED_EXAMPLE,
  localize,
  VRRP_IP,
  type VrrpBed,
} from "../testbed/vrrp_bed.ts";

const isRoot = Deno.uid() === 0;
const BOTH = [SCALE_IP.vip, VRRP_IP.gateway];
/** The bound on every hand-over (advert_int 1: three missed advertisements are about 3.6 s). */
const HANDOVER_MS = 10_000;
/** The bound on what is no hand-over: the first election, director 1 taking the addresses back. */
const SETTLE_MS = 20_000;

/**
 * Waits (at most `timeoutMs`) until director `d` holds the VIP and the gateway, the other none of
 * them (unless `alone` is false: one cut off may keep them), and the clients and nodes send to it
 * (its gratuitous ARPs reached them).
 */
async function holder(
  bed: VrrpBed,
  d: number,
  { timeoutMs = HANDOVER_MS, alone = true } = {},
): Promise<void> {
  const want = [1, 2].map((i) => i === d ? BOTH : []);
  const holds = (held: string[][]) =>
    alone
      ? JSON.stringify(held) === JSON.stringify(want)
      : JSON.stringify(held[d - 1]) === JSON.stringify(BOTH);
  await waitFor(
    `director ${d} to hold the addresses, its neighbours sending to it`,
    async () => holds(await bed.held()) && await bed.sendTo(d),
    timeoutMs,
  ).catch(async (error) => {
    throw new Error(`${error.message}\n${await bed.describe()}`);
  });
}

/** New SSH connections from `clients` through the VIP each reach a node, through director d. */
async function reachNodesThrough(bed: VrrpBed, d: number, clients: readonly string[]) {
  const nodes = await Promise.all(clients.map((c) => bed.sshNode(c)));
  for (const [i, client] of clients.entries()) {
    const through = [await bed.carried(1, client), await bed.carried(2, client)];
    if (nodes[i] === undefined || !through[d - 1] || through[2 - d]) {
      const seen = `node ${nodes[i]}, through directors ${JSON.stringify(through)}`;
      throw new Error(`${client}: ${seen}, want director ${d}\n${await bed.describe()}`);
    }
  }
}

Deno.test({
  name: "scale-out VRRP: a failed check, a killed keepalived, a vanished master move the VIP",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const bed = await createVrrpBed(16);
    const batch = (i: number) => bed.clients.slice(4 * i, 4 * i + 4);
    try {
      await bed.startKeepalived(1);
      await bed.startKeepalived(2);

      await t.step(
        "director 1 (priority 100) holds both addresses; clients reach nodes",
        async () => {
          await holder(bed, 1, { timeoutMs: SETTLE_MS });
          assertMatch(await bed.keepalivedLog(1), /\(xferproxy\) Entering MASTER STATE/);
          assertMatch(await bed.keepalivedLog(2), /\(xferproxy\) Entering BACKUP STATE/);
          await reachNodesThrough(bed, 1, batch(0));
        },
      );

      await t.step("director 1's check of the nodes fails: director 2 takes over", async () => {
        // Director 1 alone no longer reaches the nodes' /healthz.
        const ns = bed.directors[0]!.ns;
        await must(["ip", "netns", "exec", ns, "nft", "-f", "-"], {
          stdin: `table ip vrrp_test {
  chain output { type filter hook output priority 0; policy accept; tcp dport 9094 drop; }
}
`,
        });
        await holder(bed, 2);
        assertMatch(await bed.keepalivedLog(1), /VRRP_Script\(nodes_answer\) (failed|timed_out)/);
        await reachNodesThrough(bed, 2, batch(1));
        // Its check passes again: director 1 takes the addresses back (preemption).
        await must(["ip", "netns", "exec", ns, "nft", "delete", "table", "ip", "vrrp_test"]);
        await holder(bed, 1, { timeoutMs: SETTLE_MS });
      });

      await t.step("director 1's keepalived is killed: director 2 takes over", async () => {
        const pid = await bed.keepalivedPid(1);
        Deno.kill(pid, "SIGKILL");
        await holder(bed, 2);
        await reachNodesThrough(bed, 2, batch(2));
      });

      await t.step("the master drops off the network: the backup takes over", async () => {
        await bed.startKeepalived(1);
        await holder(bed, 1, { timeoutMs: SETTLE_MS });
        // Director 1's links cut on the bridges' side: no advertisement, no priority 0, nothing.
        for (const link of bed.directors[0]!.links) {
          await must(["ip", "-n", bed.segmentNs, "link", "set", link, "down"]);
        }
        // Director 1, cut off, may keep its addresses: only director 2's count.
        await holder(bed, 2, { alone: false });
        await reachNodesThrough(bed, 2, batch(3));
      });
    } finally {
      await bed.close();
    }
  },
});

Deno.test("the bed runs the example keepalived.conf with its own addresses put in", async () => {
  const example = await Deno.readTextFile(KEEPALIVED_EXAMPLE);
  const local = localize(example);
  assertMatch(local, /^\s*interface d0$/m);
  assertMatch(local, new RegExp(`^\\s*${SCALE_IP.vip.replaceAll(".", "\\.")}/24 dev d0$`, "m"));
  assertMatch(local, /^\s*198\.18\.6\.1\/24 dev d1$/m);
  assertMatch(local, /^@director1 priority 100$/m);
  assertMatch(local, /^@director2 priority 90$/m);
  assertMatch(
    local,
    /script ".*CHECK=1 .*examples\/scale-out\/director\.sh 198\.18\.5\.100 198\.18\.6\.2 198\.18\.6\.3"/,
  );
  // Nothing of the example's own addresses is left.
  assertEquals(/203\.0\.113\.|10\.1\.0\.|eth\d/.test(local), false);
});
