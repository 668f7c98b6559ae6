/**
 * Several proxies behind one address (docs/scale-out.md): the example director spreads clients
 * over healthy nodes by their address, keeps a client's SSH and UDP on one node, takes a drained
 * or dead node out within seconds while its running connections go on, and fails open.
 */
import { assertEquals, assertMatch } from "../_assert.ts";
import { run, waitFor } from "../testbed/exec.ts";
import { ROOT } from "../testbed/paths.ts";
import { createScaleBed, SCALE_IP } from "../testbed/scale_bed.ts";

const isRoot = Deno.uid() === 0;

/** Each client's node for SSH, in parallel batches (each probe is one ssh login attempt). */
async function sshNodes(
  bed: Awaited<ReturnType<typeof createScaleBed>>,
  clients: readonly string[],
): Promise<Map<string, number | undefined>> {
  const result = new Map<string, number | undefined>();
  for (let i = 0; i < clients.length; i += 8) {
    const batch = clients.slice(i, i + 8);
    const nodes = await Promise.all(batch.map((c) => bed.sshNode(c)));
    batch.forEach((c, j) => result.set(c, nodes[j]));
  }
  return result;
}

Deno.test({
  name: "scale-out: spread by client, SSH and UDP on one node, drain and death leave within 5 s",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const bed = await createScaleBed(2, 24);
    try {
      await t.step("each node says it is healthy, and serves its metrics", async () => {
        for (const n of [1, 2]) {
          assertEquals(await bed.get(n, "/healthz"), { status: 200, body: "ok\n" });
          const metrics = await bed.get(n, "/metrics");
          assertMatch(
            metrics.body,
            /^xferproxy_build_info\{version="[^"]+",backend="iptables"\} 1$/m,
          );
          assertMatch(metrics.body, /^xferproxy_dnat_service_draining 0$/m);
        }
      });
      await bed.startDirector();

      let before = new Map<string, number | undefined>();
      await t.step(
        "clients spread over both nodes; each client's SSH and UDP meet one node",
        async () => {
          before = await sshNodes(bed, bed.clients);
          const counts = [1, 2].map((n) => [...before.values()].filter((v) => v === n).length);
          // Every probe reached a node, and the hash used both (24 addresses: all on one node
          // would happen by chance once in 8 million runs).
          assertEquals(counts[0]! + counts[1]!, bed.clients.length, JSON.stringify([...before]));
          assertEquals(counts.every((c) => c > 0), true, `spread ${counts}`);
          for (const client of bed.clients.slice(0, 8)) {
            assertEquals(await bed.udpNode(client, 33001), before.get(client), `UDP of ${client}`);
          }
          // The same client lands on the same node again.
          const again = await sshNodes(bed, bed.clients.slice(0, 8));
          for (const [c, n] of again) assertEquals(n, before.get(c), `again ${c}`);
        },
      );

      await t.step("nodes see the client's own address", async () => {
        const client = bed.clients[0]!;
        const node = bed.nodes[before.get(client)! - 1]!;
        const log = await Deno.readTextFile(`${node.dir}/sshd_config.log`);
        assertMatch(log, new RegExp(`Connection from ${client.replaceAll(".", "\\.")} port \\d+`));
      });

      await t.step(
        "a drained node gets no new clients within 5 s; its running connection goes on",
        async () => {
          // A connection held open to node 1 before the drain (sshd waits for the client's banner).
          const held = bed.clients.find((c) => before.get(c) === 1)!;
          const holder = new Deno.Command("ip", {
            args: [
              "netns",
              "exec",
              bed.clientNs,
              "curl",
              "-s",
              "--interface",
              held,
              `telnet://${SCALE_IP.vip}:22`,
            ],
            stdin: "piped",
            stdout: "piped",
            stderr: "null",
          }).spawn();
          try {
            await waitFor(
              "the held connection",
              async () =>
                (await bed.inNs(bed.nodes[0]!.ns, ["ss", "-Htn", "state", "established"])).stdout
                  .includes(`${held}:`),
              5000,
            );
            const drained = await bed.dnat(1, ["drain", "--reason", "scale-out test"]);
            assertEquals(drained.code, 0, drained.stderr);
            const start = Date.now();
            await waitFor(
              "node 1 out of the director's table",
              async () =>
                (await bed.directorLog()).includes(`${SCALE_IP.vip} -> ${SCALE_IP.node(2)}\n`),
              5000,
            );
            assertEquals(Date.now() - start < 5000, true);
            assertEquals((await bed.get(1, "/healthz")).status, 503);
            assertMatch(
              (await bed.get(1, "/metrics")).body,
              /^xferproxy_dnat_service_draining 1$/m,
            );
            const after = await sshNodes(bed, bed.clients);
            assertEquals(
              [...after.values()].every((n) => n === 2),
              true,
              JSON.stringify([...after]),
            );
            // The connection made before the drain is still there, on node 1.
            assertMatch(
              (await bed.inNs(bed.nodes[0]!.ns, ["ss", "-Htn", "state", "established"])).stdout,
              new RegExp(`${held.replaceAll(".", "\\.")}:\\d+`),
            );
          } finally {
            holder.kill("SIGTERM");
            await holder.status;
            await holder.stdout.cancel().catch(() => {});
            await holder.stdin.close().catch(() => {});
          }
          assertEquals((await bed.dnat(1, ["undrain"])).code, 0);
          await waitFor("node 1 back", async () =>
            (await bed.directorLog()).trimEnd().endsWith(
              `-> ${SCALE_IP.node(1)} ${SCALE_IP.node(2)}`,
            ), 5000);
          const back = await sshNodes(bed, bed.clients);
          for (const [c, n] of back) {
            assertEquals(n, before.get(c), `back ${c}`);
          }
        },
      );

      await t.step(
        "a node whose service died leaves within 5 s; with none healthy all stay in",
        async () => {
          await bed.stopService(2, "SIGKILL");
          await waitFor(
            "node 2 out",
            async () => (await bed.directorLog()).trimEnd().endsWith(`-> ${SCALE_IP.node(1)}`),
            5000,
          );
          const after = await sshNodes(bed, bed.clients.slice(0, 8));
          assertEquals(
            [...after.values()].every((n) => n === 1),
            true,
            JSON.stringify([...after]),
          );
          // Node 1 drained too: no node is healthy, so the director keeps both rather than none.
          assertEquals((await bed.dnat(1, ["drain"])).code, 0);
          await waitFor("fail open", async () =>
            (await bed.directorLog()).trimEnd().endsWith(
              `-> ${SCALE_IP.node(1)} ${SCALE_IP.node(2)}`,
            ), 5000);
        },
      );
    } finally {
      await bed.close();
    }
  },
});

Deno.test("the director refuses what is not a plain IPv4 address or a number, before touching nft", async () => {
  for (
    const [args, said] of [
      [["010.1.0.11", "198.18.6.2"], "not an IPv4 address: 010.1.0.11"],
      [["198.18.5.100", "999.1.1.1"], "not an IPv4 address: 999.1.1.1"],
      [["198.18.5.100", "198.18.6.2;reboot"], "not an IPv4 address: 198.18.6.2;reboot"],
      [["198.18.5.100"], "usage:"],
    ] as const
  ) {
    const ran = await run(["bash", `${ROOT}examples/scale-out/director.sh`, ...args]);
    assertEquals(ran.code, 2, ran.stderr);
    assertMatch(ran.stderr, new RegExp(said.replace(/[.;]/g, "\\$&")));
  }
  const badPorts = await run([
    "env",
    "UDP_PORTS=1-2; flush ruleset",
    "bash",
    `${ROOT}examples/scale-out/director.sh`,
    "198.18.5.100",
    "198.18.6.2",
  ]);
  assertEquals([badPorts.code, badPorts.stderr.includes("bad ports")], [2, true]);
});
