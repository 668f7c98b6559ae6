/**
 * The kernel data path end to end: real reverse sessions (real sshd, real
 * OpenSSH client) whose upstream command is the UDP echo endpoint; datagrams
 * from the client namespace cross the proxy through the session's DNAT rules
 * and come back. Run once per backend.
 */
import { assertEquals, assertIncludes, assertMatch, assertOk } from "../_assert.ts";
import { must, run, waitFor } from "./_exec.ts";
import { BINARY } from "./_run.ts";
import { createTestbed, IP, type Testbed, USERS } from "./_testbed.ts";
import { sendUdp, startEchoSession } from "./_udp.ts";

const isRoot = Deno.uid() === 0;

interface Listed {
  id: string;
  owner: number;
  client: string;
  clientPort?: number;
  proxy: string;
  proxyPort: number;
  server: string;
  serverPort: number;
  alive: boolean;
}

async function listed(bed: Testbed): Promise<Listed[]> {
  const out = await must([
    "ip",
    "netns",
    "exec",
    bed.ns.proxy,
    BINARY,
    "dnat",
    "list",
    "--json",
    "--config",
    bed.configPath,
  ]);
  return JSON.parse(out);
}

/** Everything netfilter and conntrack hold in the proxy namespace, for before/after comparisons. */
async function kernelState(bed: Testbed): Promise<string> {
  const iptables = await run(["ip", "netns", "exec", bed.ns.proxy, "iptables-save"]);
  const nft = await run(["ip", "netns", "exec", bed.ns.proxy, "nft", "list", "ruleset"]);
  return (iptables.stdout + nft.stdout).split("\n").filter((l) => !l.startsWith("#")).join("\n");
}

async function conntrackFlows(bed: Testbed): Promise<string> {
  const result = await run([
    "ip",
    "netns",
    "exec",
    bed.ns.proxy,
    "conntrack",
    "-L",
    "-p",
    "udp",
    "--orig-src",
    IP.client,
  ]);
  return result.stdout.trim();
}

/** The config with one more option in its first rule (the one on the proxy's first address). */
function withRuleOption(config: string, option: string): string {
  return config.replace(
    "<connect_timeout>3</connect_timeout>",
    `<connect_timeout>3</connect_timeout>${option}`,
  );
}

async function noSessionsLeft(bed: Testbed): Promise<void> {
  await waitFor(
    "every session's rules to go",
    async () => (await listed(bed)).length === 0,
    15_000,
  );
}

function dnatSuite(backend: "iptables" | "nftables") {
  Deno.test({
    name: `UDP DNAT through reverse sessions (${backend} backend)`,
    ignore: !isRoot,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      const bed = await createTestbed({ serverExtra: `<dnat_backend>${backend}</dnat_backend>` });
      const { alice, bob } = USERS;
      const config = bed.defaultConfig({ serverExtra: `<dnat_backend>${backend}</dnat_backend>` });
      try {
        await t.step("datagrams cross the proxy and the echoes come back intact", async () => {
          const session = await startEchoSession(bed, alice, IP.proxy, 33001);
          try {
            const during = await listed(bed);
            assertEquals(during.length, 1);
            assertEquals([during[0]!.client, during[0]!.proxy, during[0]!.proxyPort], [
              IP.client,
              IP.proxy,
              33001,
            ]);
            assertEquals([during[0]!.server, during[0]!.serverPort, during[0]!.alive], [
              IP.a,
              33001,
              true,
            ]);
            assertEquals(await sendUdp(bed, 40000, IP.proxy, 33001), 20);
            assertMatch(await kernelState(bed), new RegExp(`xferproxy:${during[0]!.id}:\\d+`));
          } finally {
            const end = await session.end();
            assertEquals(end.code, 0);
            assertIncludes(end.stderr, "echoed 20");
          }
          await noSessionsLeft(bed);
          assertEquals(await conntrackFlows(bed), "");
          const log = await bed.log();
          assertMatch(
            log,
            /LOG Setup UDP forwarding between 198\.18\.1\.2:40000 and 198\.18\.2\.2:33001/,
          );
          assertMatch(
            log,
            /LOG Removed UDP forwarding between 198\.18\.1\.2:40000 and 198\.18\.2\.2:33001/,
          );
        });

        await t.step(
          "source-port filtering on: a second source port is not forwarded",
          async () => {
            const session = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              assertEquals(await sendUdp(bed, 41000, IP.proxy, 33001), 20);
              await waitFor(
                "the rule to narrow",
                async () => (await listed(bed))[0]?.clientPort === 41000,
              );
              assertEquals(await sendUdp(bed, 41001, IP.proxy, 33001, 5), 0);
              assertEquals(await sendUdp(bed, 41000, IP.proxy, 33001, 5), 5);
            } finally {
              await session.end();
            }
            await noSessionsLeft(bed);
          },
        );

        await t.step(
          "source-port filtering off: any source port of the client passes",
          async () => {
            await bed.writeConfig(
              withRuleOption(config, "<src_port_filtering>false</src_port_filtering>"),
            );
            const session = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              assertEquals(await sendUdp(bed, 42000, IP.proxy, 33001, 10), 10);
              assertEquals(await sendUdp(bed, 42001, IP.proxy, 33001, 10), 10);
              assertEquals((await listed(bed))[0]?.clientPort, undefined);
            } finally {
              await session.end();
              await bed.writeConfig(config);
            }
            await noSessionsLeft(bed);
          },
        );

        await t.step("load balancing exposes host i on proxy_port + i", async () => {
          const seen = new Map<string, number>();
          for (let i = 0; i < 2; i++) {
            const session = await startEchoSession(bed, bob, IP.proxyAlt, 33001);
            try {
              const [s] = await listed(bed);
              assertOk(s);
              seen.set(s.server, s.proxyPort);
              assertEquals(await sendUdp(bed, 43000 + i, IP.proxyAlt, s.proxyPort, 10), 10);
            } finally {
              await session.end();
            }
            await noSessionsLeft(bed);
          }
          assertEquals(seen.get(IP.a), 33001);
          assertEquals(seen.get(IP.b), 33002);
        });

        await t.step(
          "udp_port_reuse false: concurrent sessions take the next port on both sides",
          async () => {
            await bed.writeConfig(withRuleOption(config, "<udp_port_reuse>false</udp_port_reuse>"));
            const first = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              // The second session's upstream endpoint must listen on the port its slot maps to.
              const second = await startEchoSession(bed, alice, IP.proxy, 33002);
              try {
                const ports = (await listed(bed)).map((s) => [s.proxyPort, s.serverPort]).sort();
                assertEquals(ports, [[33001, 33001], [33002, 33002]]);
                assertEquals(await sendUdp(bed, 44000, IP.proxy, 33001, 10), 10);
                assertEquals(await sendUdp(bed, 44001, IP.proxy, 33002, 10), 10);
              } finally {
                await second.end();
              }
            } finally {
              await first.end();
              await bed.writeConfig(config);
            }
            await noSessionsLeft(bed);
          },
        );

        await t.step("20 concurrent sessions from distinct source ports all pass", async () => {
          const started = await Promise.allSettled(
            Array.from({ length: 20 }, () => startEchoSession(bed, alice, IP.proxy, 33001)),
          );
          const sessions = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
          try {
            const failures = started.filter((r) => r.status === "rejected");
            assertEquals(failures.map((r) => String((r as PromiseRejectedResult).reason)), []);
            assertEquals((await listed(bed)).length, 20);
            const echoed = await Promise.all(
              sessions.map((_, i) => sendUdp(bed, 45000 + i, IP.proxy, 33001, 10)),
            );
            assertEquals(echoed, Array(20).fill(10));
            await waitFor(
              "every session to learn a port",
              async () => (await listed(bed)).every((s) => s.clientPort !== undefined),
              15_000,
            );
            const ports = (await listed(bed)).map((s) => s.clientPort).sort();
            assertEquals(ports, Array.from({ length: 20 }, (_, i) => 45000 + i));
            // Every session has its port: a 21st port of the same client is not forwarded.
            assertEquals(await sendUdp(bed, 45100, IP.proxy, 33001, 5), 0);
          } finally {
            await Promise.all(sessions.map((s) => s.end()));
          }
          await noSessionsLeft(bed);
          assertEquals(await conntrackFlows(bed), "");
        });

        // iptables: our jump comes first in FORWARD, so its DROP policy is no obstacle. nftables: a
        // drop in another table cannot be overridden (accept only ends one base chain), so the
        // admin's drop chain carries the one rule docs/dnat.md gives: accept our conntrack mark.
        const dropName = backend === "iptables"
          ? "a FORWARD DROP policy still passes session traffic"
          : "a forward drop policy with the documented ct-mark rule passes session traffic";
        await t.step(dropName, async () => {
          const policy = backend === "iptables" ? ["iptables", "-P", "FORWARD", "DROP"] : [
            "nft",
            "add table inet admin; add chain inet admin forward_drop { type filter hook forward priority 10; policy drop; }; " +
            "add rule inet admin forward_drop ct mark 0x78700000 accept",
          ];
          await must(["ip", "netns", "exec", bed.ns.proxy, ...policy]);
          try {
            const session = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              assertEquals(await sendUdp(bed, 46000, IP.proxy, 33001, 10), 10);
            } finally {
              await session.end();
            }
          } finally {
            const undo = backend === "iptables"
              ? ["iptables", "-P", "FORWARD", "ACCEPT"]
              : ["nft", "delete table inet admin"];
            await must(["ip", "netns", "exec", bed.ns.proxy, ...undo]);
          }
          await noSessionsLeft(bed);
        });

        await t.step(
          "kill -9 of a session and its helper: the next session reaps the orphan",
          async () => {
            const victim = await startEchoSession(bed, bob, IP.proxy, 33001);
            const [orphan] = await listed(bed);
            assertOk(orphan);
            // The helper would clean up when its stdin closes; kill it first so the rules are orphaned.
            await must(["pkill", "-KILL", "-f", `dnat add .*--session ${orphan.id}`]);
            await must(["kill", "-KILL", String(orphan.owner)]);
            victim.kill();
            await waitFor(
              "the owner to be gone",
              async () => (await listed(bed)).every((s) => !s.alive),
            );
            assertEquals(
              (await listed(bed)).map((s) => s.id),
              [orphan.id],
            );
            const next = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              const now = await listed(bed);
              assertEquals(now.length, 1);
              assertOk(now[0]!.id !== orphan.id);
              assertEquals(await sendUdp(bed, 47000, IP.proxy, 33001, 5), 5);
            } finally {
              await next.end();
            }
            await noSessionsLeft(bed);
            assertMatch(
              await bed.log(),
              new RegExp(
                `Reaped UDP forwarding of session ${orphan.id} \\(owner ${orphan.owner} is gone\\)`,
              ),
            );
          },
        );

        await t.step("injection attempts against the helper change nothing", async () => {
          const before = await kernelState(bed);
          const base = [
            "--config",
            bed.configPath,
            "--owner",
            "1",
            "--proxy",
            IP.proxy,
            "--rule",
            "1",
            "--host",
            "0",
          ];
          const id = ["--session", crypto.randomUUID()];
          const attempts: string[][] = [
            [...id, ...base, "--client", "198.18.1.2 -j ACCEPT"],
            [...id, ...base, "--client", "198.18.1.2\n-A INPUT -j ACCEPT"],
            [...id, ...base, "--client", "--flush"],
            [...id, ...base, "--client", "example.com"],
            ["--session", "../../etc", ...base, "--client", IP.client],
            [
              ...id,
              "--config",
              bed.configPath,
              "--owner",
              "1",
              "--proxy",
              IP.proxy,
              "--rule",
              "1",
              "--host",
              "0 1",
              "--client",
              IP.client,
            ],
            [
              ...id,
              "--config",
              bed.configPath,
              "--owner",
              "-1",
              "--proxy",
              IP.proxy,
              "--rule",
              "1",
              "--host",
              "0",
              "--client",
              IP.client,
            ],
            [...id, ...base, "--client", IP.client, "--to-destination", "203.0.113.1"],
          ];
          for (const args of attempts) {
            const result = await run([
              "ip",
              "netns",
              "exec",
              bed.ns.proxy,
              BINARY,
              "dnat",
              "add",
              ...args,
            ]);
            assertEquals(result.code, 2, `accepted: ${JSON.stringify(args)}`);
            assertMatch(result.stderr, /^xferproxy: .+\n$/);
          }
          // Typed but not authorized by the config: a host the rule does not have.
          const wrongHost = await run([
            "ip",
            "netns",
            "exec",
            bed.ns.proxy,
            BINARY,
            "dnat",
            "add",
            ...id,
            ...base.slice(0, -2),
            "--host",
            "5",
            "--client",
            IP.client,
          ]);
          assertEquals([wrongHost.code, wrongHost.stderr], [
            1,
            "xferproxy: dnat refused: rule 1 has no host 5\n",
          ]);
          assertEquals(await kernelState(bed), before);
        });

        await t.step(
          "ip_forward off: the SSH session works and says UDP forwarding is unavailable",
          async () => {
            await must([
              "ip",
              "netns",
              "exec",
              bed.ns.proxy,
              "sysctl",
              "-qw",
              "net.ipv4.ip_forward=0",
            ]);
            try {
              const result = await bed.ssh(alice, IP.proxy, ["printenv", "SSH_CONNECTION"]);
              assertEquals(result.code, 0);
              assertIncludes(result.stdout, IP.a);
              assertEquals(
                result.stderr,
                "xferproxy: UDP forwarding is unavailable; the SSH session continues\n",
              );
              assertMatch(
                await bed.log(),
                /ERR UDP forwarding unavailable: xferproxy: net\.ipv4\.ip_forward is 0: enable it with "sysctl -w net\.ipv4\.ip_forward=1"/,
              );
            } finally {
              await must([
                "ip",
                "netns",
                "exec",
                bed.ns.proxy,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
              ]);
            }
          },
        );

        await t.step("reap --all removes every session and our chains", async () => {
          const session = await startEchoSession(bed, alice, IP.proxy, 33001);
          try {
            const reaped = await must([
              "ip",
              "netns",
              "exec",
              bed.ns.proxy,
              BINARY,
              "dnat",
              "reap",
              "--all",
              "--config",
              bed.configPath,
            ]);
            assertEquals(reaped, "reaped 1 session\n");
            assertEquals(await listed(bed), []);
            assertEquals(
              (await kernelState(bed)).includes("XFERPROXY") ||
                (await kernelState(bed)).includes("xferproxy"),
              false,
            );
          } finally {
            await session.end();
          }
        });
      } finally {
        await bed.close();
      }
    },
  });
}

dnatSuite("iptables");
dnatSuite("nftables");
