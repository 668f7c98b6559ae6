/**
 * make demo: the bundled examples/aspera.conf, run for real. Builds the
 * namespace testbed (client, proxy with its DNAT service, two internal
 * servers), points the example's paths and squash account at it, pushes a
 * file through the reverse proxy with real scp (each session decided by
 * xferproxy, then handed to OpenSSH's ssh), streams UDP through a session's
 * kernel DNAT, shows the proxy's log lines, tears down. It says what it
 * creates, all named with the test prefix (XFERPROXY_TEST_PREFIX, so two
 * checkouts can run it side by side), and checks that the teardown left
 * none of it behind.
 */
// deno-lint-ignore-file no-console
import {
  BINARY,
  blastUdp,
  createTestbed,
  GROUP,
  IP,
  must,
  PREFIX,
  ROOT,
  run,
  startDirectEcho,
  startEchoSession,
  type Testbed,
  USERS,
} from "../tests/testbed/mod.ts";

const MB = 50;

function banner(text: string): void {
  console.log(`\n== ${text}`);
}

async function sha256(path: string): Promise<string> {
  return (await must(["sha256sum", path])).split(" ")[0] as string;
}

/** What the bed creates on the host: each thing, and whether it is still there. */
function created(bed: Testbed): Array<[string, () => Promise<boolean>]> {
  const exists = (argv: string[]) => async () => (await run(argv)).code === 0;
  const namespaces = Object.values(bed.ns);
  return [
    [
      `network namespaces ${namespaces.join(", ")} (client, proxy, servers A and B)`,
      async () => {
        const listed = (await run(["ip", "netns", "list"])).stdout;
        return namespaces.some((ns) => new RegExp(`^${ns}( |$)`, "m").test(listed));
      },
    ],
    ...Object.values(USERS).map((user): [string, () => Promise<boolean>] => [
      `account ${user}`,
      exists(["getent", "passwd", user]),
    ]),
    [`group ${GROUP}`, exists(["getent", "group", GROUP])],
    [`sudoers drop-in ${bed.sudoersPath}`, exists(["test", "-e", bed.sudoersPath])],
    [`directory ${bed.dir} (config, keys, logs, data)`, exists(["test", "-e", bed.dir])],
  ];
}

if (Deno.uid() !== 0) {
  console.error("make demo builds network namespaces and test users: run it as root");
  Deno.exit(1);
}

const bed = await createTestbed();
const made = created(bed);
banner(
  `testbed created, every name with the prefix "${PREFIX}" (XFERPROXY_TEST_PREFIX, default xpt)`,
);
for (const [what] of made) console.log(`  ${what}`);
console.log(
  `  addresses ${IP.client} (client), ${IP.proxy} and ${IP.proxyAlt} (proxy), ${IP.a} and ${IP.b} (servers): inside the namespaces only`,
);
try {
  const example = await Deno.readTextFile(`${ROOT}examples/aspera.conf`);
  const config = example
    .replaceAll("/etc/xferproxy/keys/id_ed25519", `${bed.dir}/proxy/keys/squash`)
    .replaceAll("/home/$(user)/", `${bed.dir}/home/$(user)/`)
    .replaceAll("/etc/xferproxy/known_hosts", bed.knownHostsPath)
    .replaceAll("/var/lib/xferproxy", `${bed.dir}/state`)
    .replace("<log_directory></log_directory>", `<log_directory>${bed.dir}/log</log_directory>`)
    .replace("<squash_user>xfer</squash_user>", `<squash_user>${USERS.xfer}</squash_user>`)
    // Where the testbed's DNAT service listens: it decides and registers every session.
    .replace(
      "<server>",
      `<server>\n    <service_socket>${bed.dir}/run/dnat.sock</service_socket>`,
    )
    // The default command policy plus the demo's UDP echo endpoint, the stand-in for ascp's data
    // side, which therefore also gets UDP forwarding.
    .replace(
      "<rules>",
      `<allowed_commands>${
        [
          "ascp",
          "ascp4",
          "scp",
          "rsync --server",
          "subsystem:sftp",
          `python3 ${ROOT}tests/udp_echo.py`,
        ]
          .map((c) => `<command>${c}</command>`).join("")
      }</allowed_commands>\n      <udp_commands>${
        ["ascp", "ascp4", "async", `python3 ${ROOT}tests/udp_echo.py`]
          .map((c) => `<command>${c}</command>`).join("")
      }</udp_commands>\n      <rules>`,
    );
  await bed.writeConfig(config);
  banner("examples/aspera.conf, with paths pointed at the testbed");
  console.log((await run([BINARY, "check", "config", "--config", bed.configPath])).stdout.trim());
  console.log(
    `client ${IP.client} → proxy ${IP.proxy} (sshd ForceCommand dist/xferproxy reverse, handing over to ssh) → servers ${IP.a}, ${IP.b}`,
  );

  const src = `${bed.dir}/demo.bin`;
  await must(["dd", "if=/dev/urandom", `of=${src}`, "bs=1M", `count=${MB}`, "status=none"]);
  await Deno.chmod(src, 0o644);

  banner(
    `scp ${MB} MB up through the proxy as ${USERS.alice} (squash rule: lands as ${USERS.xfer})`,
  );
  const remote = `${bed.dataDir}/demo.bin`;
  let started = performance.now();
  await must([...bed.clientArgs("scp", USERS.alice), "-O", src, `${IP.proxy}:${remote}`], {
    timeoutMs: 120_000,
  });
  const upRate = MB / ((performance.now() - started) / 1000);
  const owner = (await must(["stat", "-c", "%U", remote])).trim();
  console.log(`uploaded: ${upRate.toFixed(1)} MB/s, owner on the internal server: ${owner}`);

  banner("scp it back down, compare sha256");
  const back = `${bed.dir}/demo-back.bin`;
  await must([...bed.clientArgs("scp", USERS.alice), "-O", `${IP.proxy}:${remote}`, back], {
    timeoutMs: 120_000,
  });
  console.log(`sha256 sent ${await sha256(src)}\nsha256 back ${await sha256(back)}`);

  banner("direct scp to the internal server, same file, for comparison");
  started = performance.now();
  await must(await bed.directScpArgs(src, `${bed.dataDir}/direct.bin`), { timeoutMs: 120_000 });
  const directRate = MB / ((performance.now() - started) / 1000);
  console.log(
    `direct: ${directRate.toFixed(1)} MB/s; through the proxy: ${
      (upRate / directRate).toFixed(2)
    }x of direct`,
  );

  banner(`load-balanced rule (${IP.proxyAlt}, individual accounts): two uploads as ${USERS.bob}`);
  for (let i = 1; i <= 2; i++) {
    const target = `${bed.dataDir}/bob-${i}.txt`;
    await Deno.writeTextFile(`${bed.dir}/bob.txt`, `upload ${i}\n`);
    await must([
      ...bed.clientArgs("scp", USERS.bob),
      "-O",
      `${bed.dir}/bob.txt`,
      `${IP.proxyAlt}:${target}`,
    ]);
    const served = (await bed.log()).split("\n").filter((l) =>
      l.includes(`user=${USERS.bob}`) && l.includes("Handing over")
    )
      .at(-1)?.match(/server (\S+)/)?.[1];
    console.log(
      `upload ${i}: served by ${served}, owner ${
        (await must(["stat", "-c", "%U", target])).trim()
      }`,
    );
  }

  banner("UDP through the kernel: a session whose upstream command is a UDP echo endpoint");
  const dnatList = () =>
    must(["ip", "netns", "exec", bed.ns.proxy, BINARY, "dnat", "list", "--config", bed.configPath]);
  const ourRules = async () =>
    (await must(["ip", "netns", "exec", bed.ns.proxy, "iptables-save"])).split("\n").filter((l) =>
      // The session's own rules; the chains' shared ones (session-flows) stay.
      l.includes("xferproxy:") && !l.includes("xferproxy:session-flows")
    ).join("\n") ||
    "(none)";
  const session = await startEchoSession(bed, USERS.alice, IP.proxy, 33001);
  let proxied;
  try {
    proxied = await blastUdp(bed, 40000, IP.proxy, 33001, 2);
    console.log(`the session's rules:\n${await ourRules()}`);
    console.log(`dnat list:\n${(await dnatList()).trim()}`);
  } finally {
    await session.end();
  }
  // The DNAT service removes them once the session's process has ended.
  for (let i = 0; i < 50 && (await ourRules()) !== "(none)"; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`the session's rules after it ended: ${await ourRules()}`);
  const direct = await startDirectEcho(bed, "a", 33001);
  let straight;
  try {
    straight = await blastUdp(bed, 40001, IP.a, 33001, 2);
  } finally {
    await direct.stop();
  }
  const percent = (loss: number) => `${(loss * 100).toFixed(1)}%`;
  console.log(
    `UDP 1400-byte stream, echoed: through the proxy ${proxied.mbit_per_s} Mbit/s (loss ${
      percent(proxied.loss)
    }), routed ${straight.mbit_per_s} Mbit/s (loss ${percent(straight.loss)}): ${
      (proxied.mbit_per_s / straight.mbit_per_s).toFixed(2)
    }x`,
  );
  console.log(
    [
      "Loss is the share of datagrams sent that never came back. One Python process sends as fast",
      "as it can for 2 s and another echoes, on cores shared with everything else, so both runs",
      "lose datagrams in full socket buffers: the figure is not a network's loss. 'Through the",
      `proxy' is client → ${IP.proxy}:33001, rewritten by the session's DNAT rule to ${IP.a}; 'routed'`,
      `is client → ${IP.a} straight, forwarded by the same proxy namespace without a rule. The`,
      "DNAT service's chains load conntrack there, so the kernel tracks both flows: the difference",
      "between the two lines is what the DNAT rule costs, not what conntrack costs.",
    ].join("\n"),
  );

  banner("a refused command");
  const refused = await bed.ssh(USERS.alice, IP.proxy, [`scp -t /tmp; sh -c id`]);
  console.log(`exit ${refused.code}: ${refused.stderr.trim()}`);

  banner("proxy log");
  console.log((await bed.log()).trim());
} finally {
  await bed.close();
  banner("testbed removed");
  const left: string[] = [];
  for (const [what, present] of made) {
    if (await present()) left.push(what);
    else console.log(`  removed ${what}`);
  }
  if (left.length > 0) {
    console.error(`left behind:\n${left.map((what) => `  ${what}`).join("\n")}`);
    Deno.exitCode = 1;
  }
}
