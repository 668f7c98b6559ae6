/**
 * The kernel data path end to end: real reverse sessions (real sshd, real
 * OpenSSH client, the session handed over to real ssh) whose upstream
 * command is the UDP echo endpoint; datagrams from the client namespace
 * cross the proxy through the session's DNAT rules and come back. The bed's
 * DNAT service learns source ports and removes ended sessions. Run once per
 * backend.
 */
import { assertEquals, assertIncludes, assertMatch, assertOk } from "../_assert.ts";
import { must, run, waitFor } from "../testbed/exec.ts";
import { BINARY } from "../testbed/paths.ts";
import { createTestbed, dnatAddArgs, IP, type Testbed, USERS } from "../testbed/reverse_bed.ts";
import { type EchoSession, sendUdp, startEchoSession } from "../testbed/udp.ts";
import { legacyIptablesRules, legacyNftTable } from "../testbed/legacy_rules.ts";

const isRoot = Deno.uid() === 0;
/** An administrator's forward drop chain with the one rule docs/dnat.md gives: accept our mark. */
const ADMIN_DROP =
  "add table inet admin; add chain inet admin forward_drop { type filter hook forward priority 10; policy drop; }; " +
  "add rule inet admin forward_drop ct mark 0x78700000 accept";

interface Listed {
  id: string;
  owner: { pid: number; start: number };
  client: string;
  clientPort?: number;
  proxy: string;
  proxyPort: number;
  portCount: number;
  server: string;
  serverPort: number;
  alive: boolean;
  registered: boolean;
}

async function listed(bed: Testbed): Promise<Listed[]> {
  const result = await bed.dnat(["list", "--json"]);
  if (result.code !== 0) throw new Error(`dnat list failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** Everything netfilter and conntrack hold in the proxy namespace, for before/after comparisons. */
async function kernelState(bed: Testbed): Promise<string> {
  const iptables = await run(["ip", "netns", "exec", bed.ns.proxy, "iptables-save"]);
  const nft = await run(["ip", "netns", "exec", bed.ns.proxy, "nft", "list", "ruleset"]);
  return (iptables.stdout + nft.stdout).split("\n").filter((l) => !l.startsWith("#"))
    .map((l) => l.replace(/ expires \S+/g, "")).join("\n");
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

/** The config with more options in its first rule (the one on the proxy's first address). */
function withRuleOption(config: string, option: string): string {
  return config.replace(
    "<connect_timeout>3</connect_timeout>",
    `<connect_timeout>3</connect_timeout>${option}`,
  );
}

/** Waits as waitFor does; on a timeout, says what is listed and what the log said last. */
async function waitExplained(
  bed: Testbed,
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  try {
    await waitFor(what, probe, timeoutMs);
  } catch (error) {
    const left = JSON.stringify(await listed(bed).catch((e) => String(e)));
    const tail = (await bed.log()).split("\n").slice(-25).join("\n");
    const flows = (await run(["ip", "netns", "exec", bed.ns.proxy, "conntrack", "-L"])).stdout;
    // What the service itself printed (a crash, a hang's last words), when it printed anything.
    const service = (await Deno.readTextFile(`${bed.dir}/log/dnat-service.out`).catch(() => ""))
      .split("\n").slice(-15).join("\n");
    throw new Error(
      `${
        (error as Error).message
      }; listed: ${left}\nlast log lines:\n${tail}\nkernel:\n${await kernelState(
        bed,
      )}\nconntrack:\n${flows}\nthe service's output:\n${service}`,
    );
  }
}

async function noSessionsLeft(bed: Testbed): Promise<void> {
  await waitExplained(
    bed,
    "every session's rules to go",
    async () => (await listed(bed)).length === 0,
    15_000,
  );
}

async function learned(bed: Testbed, port: number): Promise<void> {
  await waitFor(
    `the source port ${port} to be learned`,
    async () => (await listed(bed)).some((s) => s.clientPort === port),
  );
}

/** `dnat …` through sudo, as a proxy user would run it, in the proxy's namespaces. */
function sudoDnat(bed: Testbed, user: string, args: string[], env: Record<string, string> = {}) {
  return bed.inProxy(["sudo", "-n", BINARY, "dnat", ...args], { user, env });
}

/** Makes the next process on the machine get `pid` (writes ns_last_pid; retried, bounded). */
async function spawnWithPid(pid: number, argv: string[]): Promise<Deno.ChildProcess | undefined> {
  for (let attempt = 0; attempt < 50; attempt++) {
    await Deno.writeTextFile("/proc/sys/kernel/ns_last_pid", String(pid - 1));
    const child = new Deno.Command(argv[0] as string, {
      args: argv.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    if (child.pid === pid) return child;
    child.kill("SIGKILL");
    await child.status;
  }
  return undefined;
}

/** Datagrams of port 48000 sent in 8 rounds of 5 while `upgrade` runs: how many each echoed. */
async function echoedDuring(bed: Testbed, upgrade: () => Promise<void>): Promise<number[]> {
  const rounds = (async () => {
    const echoed: number[] = [];
    for (let i = 0; i < 8; i++) echoed.push(await sendUdp(bed, 48000, IP.proxy, 33001, 5));
    return echoed;
  })();
  await upgrade();
  return await rounds;
}

/**
 * Puts a live session's rules in the shape the previous version wrote (per-session MASQUERADE and
 * ACCEPT, no mark, no fixed rules), then starts the DNAT service as an upgrade would: the flow that
 * crosses under a FORWARD DROP policy all along must keep crossing, its conntrack entry marked.
 */
async function convertsLegacyRules(bed: Testbed): Promise<void> {
  const inProxy = (...argv: string[]) => must(["ip", "netns", "exec", bed.ns.proxy, ...argv]);
  await bed.stopDnatService();
  const session = await startEchoSession(bed, USERS.alice, IP.proxy, 33001);
  try {
    const [s] = await listed(bed);
    const save = await inProxy("iptables-save");
    const ours = (chain: string, marker: string) =>
      save.split("\n").filter((l) => l.startsWith(`-A ${chain} `) && l.includes(marker));
    const [post, fwd] = legacyIptablesRules(s!);
    const legacy = [
      "*nat",
      ...ours("XFERPROXY-PRE", "CONNMARK").map((l) => l.replace("-A ", "-D ")),
      ...ours("XFERPROXY-POST", "session-flows").map((l) => l.replace("-A ", "-D ")),
      post,
      "COMMIT",
      "*filter",
      ...ours("XFERPROXY-FWD", "session-flows").map((l) => l.replace("-A ", "-D ")),
      fwd,
      "COMMIT",
      "",
    ].join("\n");
    const restored = await run(
      ["ip", "netns", "exec", bed.ns.proxy, "iptables-restore", "--noflush", "--wait"],
      { stdin: legacy },
    );
    assertEquals(restored.code, 0, restored.stderr);
    await inProxy("iptables", "-P", "FORWARD", "DROP");
    try {
      assertEquals(await sendUdp(bed, 48000, IP.proxy, 33001, 10), 10);
      const flow = async () =>
        (await conntrackFlows(bed)).split("\n").find((l) => l.includes("sport=48000")) ?? "";
      assertIncludes(await flow(), "mark=0 ");
      // The upgrade: the service starts while datagrams keep crossing, every one echoed.
      assertEquals(await echoedDuring(bed, () => bed.startDnatService()), [5, 5, 5, 5, 5, 5, 5, 5]);
      await waitFor(
        "the conversion",
        async () => (await bed.log()).includes("Converted the rules of 1 live sessions"),
      );
      assertIncludes(await flow(), "mark=2020605952 ");
      const after = await inProxy("iptables-save");
      const tagged = (chain: string) =>
        after.split("\n").filter((l) => l.startsWith(`-A ${chain} `) && l.includes(s!.id));
      assertEquals([tagged("XFERPROXY-POST").length, tagged("XFERPROXY-FWD").length], [0, 0]);
      assertEquals(tagged("XFERPROXY-PRE").length, 2);
      assertEquals(await sendUdp(bed, 48000, IP.proxy, 33001, 10), 10);
    } finally {
      await inProxy("iptables", "-P", "FORWARD", "ACCEPT");
    }
  } finally {
    await session.end();
  }
  await noSessionsLeft(bed);
}

/**
 * Puts our nftables table in the layout the previous version wrote (flow sets, the mark set in
 * forward) with a session live, then starts the DNAT service as an upgrade would: the flow that
 * crosses the administrator's drop chain all along keeps crossing, and the table ends in the current
 * layout (the mark set at our DNAT, one accept and one masquerade by it).
 */
async function convertsLegacyNftTable(bed: Testbed): Promise<void> {
  const inProxy = (...argv: string[]) => must(["ip", "netns", "exec", bed.ns.proxy, ...argv]);
  const rules = async (chain: string) =>
    (await inProxy("nft", "list", "chain", "ip", "xferproxy", chain)).split("\n")
      .filter((l) => /^\s+(meta|ct) /.test(l)).map((l) => l.trim());
  await bed.stopDnatService();
  const session = await startEchoSession(bed, USERS.alice, IP.proxy, 33001);
  try {
    const [s] = await listed(bed);
    const restored = await run(["ip", "netns", "exec", bed.ns.proxy, "nft", "-f", "-"], {
      stdin: legacyNftTable(s!.client, s!.server, s!.serverPort),
    });
    assertEquals(restored.code, 0, restored.stderr);
    assertEquals((await rules("forward")).length, 4);
    await inProxy("nft", ADMIN_DROP);
    try {
      assertEquals(await sendUdp(bed, 48000, IP.proxy, 33001, 10), 10);
      // The upgrade: the service starts while datagrams keep crossing, every one echoed.
      assertEquals(await echoedDuring(bed, () => bed.startDnatService()), [5, 5, 5, 5, 5, 5, 5, 5]);
      await waitFor(
        "the table's conversion",
        async () => (await rules("prerouting")).every((r) => r.includes("ct mark set 0x78700000")),
      );
      assertEquals(await rules("forward"), ["ct status dnat ct mark 0x78700000 accept"]);
      assertEquals(await rules("postrouting"), ["ct status dnat ct mark 0x78700000 masquerade"]);
      const flow = (await conntrackFlows(bed)).split("\n").find((l) => l.includes("sport=48000"));
      assertIncludes(flow ?? "", "mark=2020605952 ");
      assertEquals(await sendUdp(bed, 48000, IP.proxy, 33001, 10), 10);
    } finally {
      await inProxy("nft", "delete table inet admin");
    }
  } finally {
    await session.end();
  }
  await noSessionsLeft(bed);
}

function dnatSuite(backend: "iptables" | "nftables") {
  Deno.test({
    name: `UDP DNAT through reverse sessions (${backend} backend)`,
    ignore: !isRoot,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      const serverExtra = `<dnat_backend>${backend}</dnat_backend>`;
      const bed = await createTestbed({ serverExtra });
      const { alice, bob } = USERS;
      const config = bed.defaultConfig({ serverExtra });
      try {
        await t.step("datagrams cross the proxy and the echoes come back intact", async () => {
          const session = await startEchoSession(bed, alice, IP.proxy, 33001);
          try {
            const during = await listed(bed);
            assertEquals(during.length, 1);
            const [s] = during;
            assertEquals([s!.client, s!.proxy, s!.proxyPort, s!.portCount], [
              IP.client,
              IP.proxy,
              33001,
              1,
            ]);
            assertEquals([s!.server, s!.serverPort, s!.alive, s!.registered], [
              IP.a,
              33001,
              true,
              true,
            ]);
            assertEquals(await sendUdp(bed, 40000, IP.proxy, 33001), 20);
            if (backend === "iptables") {
              assertMatch(await kernelState(bed), new RegExp(`xferproxy:${s!.id}:\\d+:\\d+`));
            } else {
              // The session's DNAT element: the address-only key, or the learned port's.
              const [c, p, a] = [IP.client, IP.proxy, IP.a].map((ip) => ip.replaceAll(".", "\\."));
              const key = new RegExp(`${c} (\\. 40000 )?\\. ${p} \\. 33001 .*: ${a} \\. 33001`);
              assertMatch(await kernelState(bed), key);
            }
            // The session is ssh now: its pid owns the rules.
            assertEquals(
              await Deno.readLink(`/proc/${s!.owner.pid}/exe`),
              "/usr/bin/ssh",
            );
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
          // Both directions, as conntrack counted them before the flow was purged.
          assertMatch(
            log,
            /LOG Removed UDP forwarding between 198\.18\.1\.2:40000 and 198\.18\.2\.2:33001 \(session ended\) .*bytes=\d{4,} packets=40 duration_ms=\d+/,
          );
        });

        await t.step(
          "a flow that reached the proxy before its session is purged, and never learned",
          async () => {
            // No session yet: nothing answers, and conntrack keeps the flow, un-NATed, for 30 s.
            assertEquals(await sendUdp(bed, 40500, IP.proxy, 33001, 3), 0);
            const untranslated = async () =>
              (await conntrackFlows(bed)).split("\n").filter((l) =>
                l.includes("sport=40500") && l.includes(`src=${IP.proxy} dst=${IP.client}`)
              );
            assertEquals((await untranslated()).length, 1);
            const session = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              // Purged once the session was told (its first UDP would come later still).
              await waitFor(
                "the stale flow purged",
                async () => (await untranslated()).length === 0,
              );
              // The real flow, from another port: its port is the one learned, never the stale one's.
              assertEquals(await sendUdp(bed, 40501, IP.proxy, 33001, 10), 10);
              await learned(bed, 40501);
            } finally {
              await session.end();
            }
            await noSessionsLeft(bed);
          },
        );

        await t.step("scp, sftp and rsync sessions start no DNAT at all", async () => {
          const before = await bed.log();
          const result = await bed.ssh(alice, IP.proxy, ["printenv", "SSH_CONNECTION"]);
          assertEquals(result.code, 0);
          const lines = (await bed.log()).slice(before.length);
          assertMatch(lines, /Handing over to ssh .* udp=none/);
          assertEquals(/UDP forwarding/.test(lines), false, lines);
        });

        await t.step(
          "source-port filtering on: a second source port is not forwarded",
          async () => {
            const session = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              assertEquals(await sendUdp(bed, 41000, IP.proxy, 33001), 20);
              await learned(bed, 41000);
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

        await t.step(
          "load-balanced hosts share the server's port: two sessions of one client each reach their own server",
          async () => {
            // The second session starts while the first has sent nothing yet: its registration
            // waits until the first one's source port is learned, so no flow goes astray.
            const first = await startEchoSession(bed, bob, IP.proxyAlt, 33001);
            let second: EchoSession | undefined;
            try {
              const starting = startEchoSession(bed, bob, IP.proxyAlt, 33001);
              assertEquals(await sendUdp(bed, 43000, IP.proxyAlt, 33001, 10), 10);
              second = await starting;
              const sessions = await listed(bed);
              assertEquals(new Set(sessions.map((s) => s.server)), new Set([IP.a, IP.b]));
              assertEquals(sessions.map((s) => s.proxyPort), [33001, 33001]);
              assertEquals(await sendUdp(bed, 43001, IP.proxyAlt, 33001, 10), 10);
            } finally {
              const ends = [await first.end(), await second?.end()];
              // Each server's endpoint echoed its own client's datagrams, and only those.
              assertIncludes(ends[0]!.stderr, "echoed 10");
              assertIncludes(ends[1]?.stderr ?? "", "echoed 10");
            }
            await noSessionsLeft(bed);
          },
        );

        await t.step(
          "udp_port_reuse false, proxy_port 0: the server's port span passes through unchanged",
          async () => {
            await bed.writeConfig(withRuleOption(
              config,
              "<proxy_port>0</proxy_port><udp_port_reuse>false</udp_port_reuse><udp_port_count>4</udp_port_count>",
            ));
            const first = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              // The server gives the second transfer the next port; the proxy forwards it as is.
              const second = await startEchoSession(bed, alice, IP.proxy, 33002);
              try {
                const spans = (await listed(bed)).map((
                  s,
                ) => [s.proxyPort, s.portCount, s.serverPort]);
                assertEquals(spans, [[33001, 4, 33001], [33001, 4, 33001]]);
                assertEquals(await sendUdp(bed, 44000, IP.proxy, 33001, 10), 10);
                assertEquals(await sendUdp(bed, 44001, IP.proxy, 33002, 10), 10);
              } finally {
                assertIncludes((await second.end()).stderr, "echoed 10");
              }
            } finally {
              assertIncludes((await first.end()).stderr, "echoed 10");
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
          const policy = backend === "iptables"
            ? ["iptables", "-P", "FORWARD", "DROP"]
            : ["nft", ADMIN_DROP];
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

        if (backend === "iptables") {
          await t.step(
            "an upgrade with a session live converts its per-session rules without losing a datagram",
            () => convertsLegacyRules(bed),
          );
        } else {
          await t.step(
            "an upgrade with a session live converts the table's layout without losing a datagram",
            () => convertsLegacyNftTable(bed),
          );
        }

        {
          // Our chain and the session's rules (map elements) stay; only the way into them goes.
          const unhook = backend === "iptables"
            ? "iptables -t nat -D PREROUTING -j XFERPROXY-PRE"
            : "nft flush chain ip xferproxy prerouting";
          await t.step(
            "the way into our rules removed: a new session's first flow meanwhile reaches its server once it is back",
            async () => {
              const session = await startEchoSession(bed, alice, IP.proxy, 33001);
              try {
                await must(["ip", "netns", "exec", bed.ns.proxy, ...unhook.split(" ")]);
                // Its first datagrams meet no rule: an untranslated entry, kept alive by the flow.
                assertEquals(await sendUdp(bed, 47500, IP.proxy, 33001, 2), 0);
                await waitExplained(
                  bed,
                  "the jump back and the flow reaching its server",
                  async () => (await sendUdp(bed, 47500, IP.proxy, 33001, 2)) === 2,
                  15_000,
                );
                assertMatch(
                  await bed.log(),
                  /WARN Put back our chains or their jumps .* of 1 sessions not yet narrowed/,
                );
                await learned(bed, 47500);
              } finally {
                await session.end();
              }
              await noSessionsLeft(bed);
            },
          );
        }

        await t.step(
          "a firewall flush during a session is healed by the DNAT service",
          async () => {
            const session = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              assertEquals(await sendUdp(bed, 47000, IP.proxy, 33001, 5), 5);
              await learned(bed, 47000);
              const [s] = await listed(bed);
              // A packet that arrives while the rules are gone leaves an untranslated entry, which
              // every later packet of the flow would follow to the proxy itself: one planted here,
              // before the reload, must be gone once the rules are back.
              await run(["ip", "netns", "exec", bed.ns.proxy, "conntrack", "-F"]);
              await must([
                "ip",
                "netns",
                "exec",
                bed.ns.proxy,
                ...`conntrack -I -p udp -s ${IP.client} -d ${IP.proxy} --sport 47000 --dport 33001`
                  .split(" "),
                ...`-r ${IP.proxy} -q ${IP.client} --reply-port-src 33001 --reply-port-dst 47000 -t 120`
                  .split(" "),
              ]);
              const flush = backend === "iptables"
                ? [
                  "sh",
                  "-c",
                  "iptables -t nat -F && iptables -F && iptables -t nat -X XFERPROXY-PRE",
                ]
                : ["nft", "flush ruleset"];
              await must(["ip", "netns", "exec", bed.ns.proxy, ...flush]);
              await waitExplained(
                bed,
                "the rules to come back",
                async () => (await sendUdp(bed, 47000, IP.proxy, 33001, 2)) === 2,
                15_000,
              );
              assertMatch(
                await bed.log(),
                new RegExp(
                  `WARN Re-asserted UDP forwarding of session ${s!.id}: its rules were missing`,
                ),
              );
              // Still narrowed to the learned port.
              assertEquals(await sendUdp(bed, 47001, IP.proxy, 33001, 3), 0);
              // The service made those changes in-process where libnftables is installed.
              const via = backend === "iptables" ? "iptables-restore" : "libnftables /";
              assertIncludes(
                await bed.log(),
                `DNAT service started (${backend} backend, changes through ${via}`,
              );
            } finally {
              await session.end();
            }
            await noSessionsLeft(bed);
          },
        );

        await t.step(
          "kill -9 of everything (client, session, DNAT service): sessions still get UDP, the next start reaps",
          async () => {
            await bed.stopDnatService("SIGKILL");
            try {
              const victim = await startEchoSession(bed, bob, IP.proxy, 33001);
              const [orphan] = await listed(bed);
              assertOk(orphan);
              assertEquals(await sendUdp(bed, 48000, IP.proxy, 33001, 5), 5);
              // kill -9 of everything: the client and the session process (ssh).
              victim.kill();
              await run(["kill", "-KILL", String(orphan.owner.pid)]);
              await waitFor(
                "the owner to be gone",
                async () => (await listed(bed))[0]?.alive === false,
              );
              const next = await startEchoSession(bed, alice, IP.proxy, 33001);
              try {
                const now = await listed(bed);
                assertEquals(now.map((s) => s.id).includes(orphan.id), false);
                assertEquals(await sendUdp(bed, 48001, IP.proxy, 33001, 5), 5);
              } finally {
                await next.end();
              }
              assertMatch(
                await bed.log(),
                new RegExp(
                  `Removed UDP forwarding between 198\\.18\\.1\\.2:\\* and 198\\.18\\.2\\.2:33001 \\(session ended\\) session=${orphan.id}`,
                ),
              );
            } finally {
              await bed.startDnatService();
            }
            await noSessionsLeft(bed);
          },
        );

        await t.step("a reused pid does not keep an ended session's rules", async () => {
          await bed.stopDnatService();
          let impostor: Deno.ChildProcess | undefined;
          try {
            const victim = await startEchoSession(bed, bob, IP.proxy, 33001);
            const [s] = await listed(bed);
            assertOk(s);
            // The owner first: killing the client first ends the owner on its own, and the kill
            // then raced its exit ("No such process").
            await must(["kill", "-KILL", String(s.owner.pid)]);
            victim.kill();
            await waitFor(
              "the owner to be gone",
              async () => !(await Deno.stat(`/proc/${s.owner.pid}`).then(() => true, () => false)),
            );
            await new Promise((r) => setTimeout(r, 1100)); // a start time in another second
            // The same pid, named like a session: only its start time tells it apart.
            impostor = await spawnWithPid(s.owner.pid, [
              "sh",
              "-c",
              "exec -a xferproxy-ssh sleep 60",
            ]);
            assertOk(impostor, `could not get pid ${s.owner.pid} again`);
            assertEquals((await listed(bed))[0]?.alive, false);
            await bed.startDnatService();
            await noSessionsLeft(bed);
          } finally {
            try {
              impostor?.kill("SIGKILL");
            } catch { /* already gone */ }
            await impostor?.status;
            await bed.startDnatService();
          }
        });

        await t.step("through sudo the call trusts nothing the caller chose", async () => {
          const before = await kernelState(bed);
          // A group member with a shell forges the environment sshd would have set.
          const forger = bed.spawnInProxy(["sleep", "60"], {
            user: alice,
            env: { SSH_CONNECTION: `198.18.1.99 50000 ${IP.proxy} 22` },
          });
          const target = dnatAddArgs(1).slice(0, 7); // add --rule 1 --host 0 --server A:22
          try {
            const refused = async (user: string, args: string[], why: RegExp) => {
              const result = await sudoDnat(bed, user, args);
              assertEquals(result.code === 0, false, result.stdout + result.stderr);
              assertMatch(result.stderr, why);
              assertMatch(result.stdout + result.stderr, /refused|does not take|together/);
            };
            // Not an SSH session (alice's shell outside sshd's tree runs sudo): whatever
            // SSH_CONNECTION says, nothing is installed, for the forger's address or any other.
            const forged = await bed.inProxy([
              "sh",
              "-c",
              `SSH_CONNECTION="198.18.1.99 50000 ${IP.proxy} 22" sudo -n ${BINARY} dnat ${
                target.join(" ")
              }; exit $?`,
            ], { user: alice });
            assertEquals(forged.code, 1, forged.stderr);
            assertMatch(
              forged.stderr,
              /^xferproxy: dnat refused: process \d+ was not started by sshd/,
            );
            await refused(alice, [
              ...target,
              "--owner",
              String(forger.pid),
              "--client",
              "198.18.1.99",
              "--proxy",
              IP.proxy,
            ], /--owner, --client and --proxy are for root only/);
            // Sessions' ids are issued: a victim's id (seen in the log) cannot be re-registered.
            await refused(
              bob,
              [...target, "--session", crypto.randomUUID()],
              /does not take --session/,
            );
            assertEquals(await kernelState(bed), before);
          } finally {
            forger.kill("SIGKILL");
            await forger.output();
          }
          // A real session through sudo (the service is down): the kernel names it.
          await bed.stopDnatService();
          try {
            const session = await startEchoSession(bed, alice, IP.proxy, 33001);
            try {
              const [mine] = await listed(bed);
              assertEquals([mine?.client, mine?.server, mine?.alive], [IP.client, IP.a, true]);
              // Bob may neither see nor remove Alice's session, nor reap everything.
              assertEquals((await sudoDnat(bed, bob, ["list", "--json"])).stdout, "[]\n");
              const del = await sudoDnat(bed, bob, ["del", "--session", mine!.id]);
              assertEquals([del.code, del.stderr], [
                1,
                `xferproxy: dnat refused: session ${mine!.id} is not the caller's\n`,
              ]);
              const all = await sudoDnat(bed, bob, ["reap", "--all"]);
              assertEquals(all.code, 1);
              assertEquals((await sudoDnat(bed, alice, ["del", "--session", mine!.id])).code, 0);
              // The sudo call runs as root: its line is in root's file, which the group cannot
              // write, and not in the sessions' shared one.
              const removed = `(removed by dnat del) session=${mine!.id}`;
              const rootFile = `${bed.dir}/log/root/xferproxy.log`;
              assertIncludes(await Deno.readTextFile(rootFile), removed);
              const shared = await Deno.readTextFile(bed.logPath).catch(() => "");
              assertEquals(shared.includes(removed), false);
              const forged = await bed.inProxy(["sh", "-c", `echo forged >> ${rootFile}`], {
                user: alice,
              });
              assertEquals(forged.code === 0, false);
            } finally {
              await session.end();
            }
          } finally {
            await bed.startDnatService();
          }
          await noSessionsLeft(bed);
          // A config others may write, or a link in its place, is not trusted through sudo.
          await Deno.chmod(bed.configPath, 0o664);
          try {
            const result = await sudoDnat(bed, alice, ["list"]);
            assertEquals(result.code, 1);
            assertMatch(
              result.stderr,
              /^xferproxy: Cannot load config "\/etc\/xferproxy\/aspera.conf": must be owned by root and writable only by root \(uid 0, mode 0664\)\n$/,
            );
          } finally {
            await Deno.chmod(bed.configPath, 0o644);
          }
          const real = `${bed.configPath}.real`;
          await Deno.rename(bed.configPath, real);
          await Deno.symlink(real, bed.configPath);
          try {
            const result = await sudoDnat(bed, alice, ["list"]);
            assertEquals([result.code, result.stderr], [
              1,
              'xferproxy: Cannot load config "/etc/xferproxy/aspera.conf": is a symbolic link or not ' +
              "a regular file; a privileged call reads only a regular file\n",
            ]);
          } finally {
            await Deno.remove(bed.configPath);
            await Deno.rename(real, bed.configPath);
          }
        });

        await t.step("injection attempts against the helper change nothing", async () => {
          const before = await kernelState(bed);
          // Root's dnat add, naming owner 1 and the addresses, without --client, which the attempts vary.
          const base = dnatAddArgs(1).filter((_, i, all) =>
            all[i] !== "--client" && all[i - 1] !== "--client"
          );
          const swap = (flag: string, value: string) => {
            const args = [...base];
            args[args.indexOf(flag) + 1] = value;
            return args;
          };
          const attempts: string[][] = [
            [...base, "--client", "198.18.1.2 -j ACCEPT"],
            [...base, "--client", "198.18.1.2\n-A INPUT -j ACCEPT"],
            [...base, "--client", "--flush"],
            [...base, "--client", "example.com"],
            [...base, "--client", IP.client, "--session", "../../etc"],
            [...swap("--host", "0 1"), "--client", IP.client],
            [...swap("--owner", "-1"), "--client", IP.client],
            [...base, "--client", IP.client, "--to-destination", "198.18.2.9"],
            [...swap("--server", "198.18.2.2"), "--client", IP.client],
          ];
          for (const args of attempts) {
            const result = await bed.dnat(args);
            assertEquals(result.code, 2, `accepted: ${JSON.stringify(args)}`);
            assertMatch(result.stderr, /^xferproxy: .+\n$/);
          }
          // Typed but not authorized by the config: a host the rule does not have.
          const wrongHost = await bed.dnat([...swap("--host", "5"), "--client", IP.client]);
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
              const session = await startEchoSession(bed, alice, IP.proxy, 33001);
              const end = await session.end();
              assertEquals(end.code, 0);
              assertIncludes(
                end.stderr,
                "xferproxy: UDP forwarding is unavailable; the SSH session continues\n",
              );
              assertMatch(
                await bed.log(),
                /ERR UDP forwarding unavailable: net\.ipv4\.ip_forward is 0: enable it with "sysctl -w net\.ipv4\.ip_forward=1"/,
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
            const reaped = (await bed.dnat(["reap", "--all"])).stdout;
            assertEquals(reaped, "reaped 1 session\n");
            assertEquals(await listed(bed), []);
            const state = await kernelState(bed);
            assertEquals(state.includes("XFERPROXY") || state.includes("xferproxy"), false);
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
