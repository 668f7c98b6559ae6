/**
 * make demo-scale: two xferproxy nodes behind one address (docs/scale-out.md), in network
 * namespaces this script creates and removes: clients spread by address, one client's SSH and
 * UDP on one node, a drained node taken out by the director, a node whose service died too.
 */
// deno-lint-ignore-file no-console
import { createScaleBed, SCALE_IP } from "../tests/testbed/mod.ts";

if (Deno.uid() !== 0) {
  console.error("make demo-scale builds network namespaces: run it as root");
  Deno.exit(1);
}

const say = (text: string) => console.log(`\n== ${text}`);
const started = Date.now();

say(
  "Creating namespaces: 12 client addresses (198.18.5.10-21), a director (VIP " +
    `${SCALE_IP.vip}), two nodes (${SCALE_IP.node(1)}, ${SCALE_IP.node(2)}) with sshd and ` +
    "xferproxy dnat serve each",
);
const bed = await createScaleBed(2, 12);
try {
  for (const n of [1, 2]) {
    const health = await bed.get(n, "/healthz");
    console.log(`node ${n}: GET /healthz -> ${health.status} ${health.body.trim()}`);
  }
  say("Starting examples/scale-out/director.sh (nft: jhash ip saddr over healthy nodes)");
  await bed.startDirector();
  console.log(
    (await bed.inNs(bed.directorNs, ["nft", "list", "table", "ip", "xferproxy_director"])).stdout
      .trim(),
  );

  const spread = async (label: string) => {
    const nodes = await Promise.all(bed.clients.map((c) => bed.sshNode(c)));
    console.log(
      `${label}: ${bed.clients.map((c, i) => `${c.split(".")[3]}->${nodes[i] ?? "?"}`).join(" ")}`,
    );
    return nodes;
  };
  say("Each client address connects over SSH to the VIP; which node's sshd answered:");
  const before = await spread("client->node");
  say("Their UDP (a FASP flow's first datagram) meets the same node:");
  for (const [i, c] of bed.clients.slice(0, 4).entries()) {
    const udp = await bed.udpNode(c, 33001);
    console.log(
      `${c}: SSH on node ${before[i]}, UDP to node ${udp} ${
        udp === before[i] ? "(same)" : "(DIFFERENT)"
      }`,
    );
  }

  say("xferproxy dnat drain on node 1 (running sessions go on, new ones go elsewhere)");
  console.log((await bed.dnat(1, ["drain", "--reason", "demo"])).stdout.trim());
  const t0 = Date.now();
  while (
    !(await bed.directorLog()).includes(`-> ${SCALE_IP.node(2)}\n`) && Date.now() - t0 < 10_000
  ) {
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`the director took node 1 out after ${Date.now() - t0} ms`);
  const health = await bed.get(1, "/healthz");
  console.log(`node 1: GET /healthz -> ${health.status} ${health.body.trim()}`);
  await spread("client->node");
  say("xferproxy dnat undrain on node 1; then node 2's DNAT service is killed (kill -9)");
  console.log((await bed.dnat(1, ["undrain"])).stdout.trim());
  await new Promise((r) => setTimeout(r, 2000));
  await bed.stopService(2, "SIGKILL");
  const t1 = Date.now();
  while (
    !(await bed.directorLog()).trimEnd().endsWith(`-> ${SCALE_IP.node(1)}`) &&
    Date.now() - t1 < 10_000
  ) {
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`the director took node 2 out after ${Date.now() - t1} ms`);
  await spread("client->node");
  say("The director's log:");
  console.log((await bed.directorLog()).trim());
  say("node 1's /metrics (excerpt):");
  const metrics = (await bed.get(1, "/metrics")).body.split("\n").filter((l) => !l.startsWith("#"));
  console.log(metrics.filter((l) => /build_info|draining|netfilter_changes/.test(l)).join("\n"));
} finally {
  say("Removing the namespaces, the director's table, the nodes' services and files");
  await bed.close();
}
console.log(`\ndone in ${Math.round((Date.now() - started) / 1000)} s`);
