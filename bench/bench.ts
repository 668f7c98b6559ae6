/**
 * make bench: every figure is a ratio against a baseline measured in the
 * same run, alternating candidate and baseline over several rounds and
 * taking medians. Writes bench/results.json and bench/results.md.
 * Needs root (network namespaces); tests never assert timings, this does not either.
 */
// deno-lint-ignore-file no-console
import { must, run } from "../tests/e2e/_exec.ts";
import { BINARY, ROOT } from "../tests/e2e/_run.ts";
import { createTestbed, IP, type Testbed, USERS } from "../tests/e2e/_testbed.ts";
import {
  createForwardBed,
  FIP,
  type ForwardBed,
  forwardConfig,
} from "../tests/e2e/_forward_bed.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
const SCP_MB = Number(Deno.env.get("BENCH_SCP_MB") ?? "500");
const UDP_SECONDS = 3;
const LATENCY_RUNS = 30;
const CONCURRENT_SESSIONS = 50;

/** One comparison row. */
interface Row {
  section: string;
  metric: string;
  unit: string;
  candidate: number;
  baseline: number;
  baselineName: string;
  /** candidate / baseline. */
  ratio: number;
  note?: string;
}

const rows: Row[] = [];
const extra: Record<string, unknown> = {};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function add(row: Omit<Row, "ratio">): void {
  const full = {
    ...row,
    ratio: row.baseline === 0 ? 0 : Number((row.candidate / row.baseline).toFixed(3)),
  };
  rows.push(full);
  console.log(
    `  ${row.section} / ${row.metric}: ${row.candidate.toFixed(2)} vs ${row.baselineName} ${
      row.baseline.toFixed(2)
    } ${row.unit} → ${full.ratio}`,
  );
}

/** Starts a line-oriented command, waits for "ready" on stdout; `finish()` closes stdin and returns the last stdout line. */
async function startReady(argv: string[]): Promise<{ finish(): Promise<string> }> {
  const [program, ...args] = argv;
  const child = new Deno.Command(program as string, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (!text.includes("ready\n")) {
    if (Date.now() > deadline) throw new Error(`${argv.join(" ")}: no ready line`);
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`${argv.join(" ")} ended before ready`);
    text += chunk.value;
  }
  const writer = child.stdin.getWriter();
  return {
    async finish() {
      await writer.close().catch(() => {});
      let rest = text.slice(text.indexOf("ready\n") + 6);
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        rest += chunk.value;
      }
      await child.status;
      return rest.trim().split("\n").at(-1) ?? "";
    },
  };
}

/** Streams UDP from the client namespace into a sink; returns receiver Mbit/s and loss. */
async function udpStream(
  ns: string,
  sinkArgv: string[],
  srcPort: number,
  dstIp: string,
  dstPort: number,
): Promise<{ mbit: number; loss: number }> {
  const sink = await startReady(sinkArgv);
  const sent = JSON.parse(
    await must([
      "ip",
      "netns",
      "exec",
      ns,
      "python3",
      `${ROOT}tests/e2e/probes/udp_send.py`,
      String(srcPort),
      dstIp,
      String(dstPort),
      String(UDP_SECONDS),
    ], { timeoutMs: 60_000 }),
  );
  await new Promise((r) => setTimeout(r, 300));
  const got = JSON.parse(await sink.finish());
  return {
    mbit: (got.bytes * 8) / sent.seconds / 1e6,
    loss: 1 - got.datagrams / Math.max(1, sent.sent),
  };
}

async function timed(argv: string[]): Promise<number> {
  const start = performance.now();
  await must(argv, { timeoutMs: 600_000 });
  return (performance.now() - start) / 1000;
}

async function pssKb(pid: number): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`).catch(() => "");
  return Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
}

/** pids of processes matching the pattern whose program is one of `programs` (not shells or sudo around them). */
async function pids(
  pattern: string,
  user?: string,
  programs = ["deno", "xferproxy"],
): Promise<number[]> {
  const result = await run(["pgrep", ...(user ? ["-u", user] : []), "-f", pattern]);
  const kept: number[] = [];
  for (const pid of result.stdout.trim().split("\n").filter(Boolean).map(Number)) {
    const comm = (await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "")).trim();
    if (programs.includes(comm)) kept.push(pid);
  }
  return kept;
}

/** A second sshd on the proxy whose ForceCommand is plain OpenSSH ssh to server A: the native double hop. */
async function startNativeHop(bed: Testbed): Promise<Deno.ChildProcess> {
  const script = `${bed.dir}/native-hop.sh`;
  await Deno.writeTextFile(
    script,
    [
      "#!/bin/sh",
      `exec ssh -T -F /dev/null -o BatchMode=yes -o UserKnownHostsFile=${bed.knownHostsPath} -c chacha20-poly1305@openssh.com \\`,
      `  -i "$HOME/.ssh/id_ed25519" -l "$USER" ${IP.a} -- "$SSH_ORIGINAL_COMMAND"`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  const config = (await Deno.readTextFile(`${bed.dir}/proxy/sshd_config`))
    .replace("Port 22", "Port 2222")
    .replace(/PidFile \S+/, `PidFile ${bed.dir}/proxy/native.pid`)
    .replace(/ForceCommand .*/, `ForceCommand ${script}`);
  await Deno.writeTextFile(`${bed.dir}/proxy/sshd_native_config`, config);
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      bed.ns.proxy,
      "/usr/sbin/sshd",
      "-D",
      "-f",
      `${bed.dir}/proxy/sshd_native_config`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    const probe = await run(["ip", "netns", "exec", bed.ns.proxy, "ss", "-Hltn"]);
    if (probe.stdout.includes(":2222")) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

async function reverseBenchmarks(): Promise<void> {
  const bed = await createTestbed();
  let native: Deno.ChildProcess | undefined;
  try {
    native = await startNativeHop(bed);
    const { alice } = USERS;
    const directKey = `${bed.dir}/direct_key`;
    await bed.directScpArgs("/dev/null", "/dev/null"); // writes the direct key
    const direct = [
      "ip",
      "netns",
      "exec",
      bed.ns.client,
      "ssh",
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      `UserKnownHostsFile=${bed.knownHostsPath}`,
      "-i",
      directKey,
      "-l",
      USERS.xfer,
      IP.a,
    ];
    const viaProxy = [...bed.sshArgs(alice), IP.proxy];
    const viaNative = [...bed.sshArgs(alice), "-p", "2222", IP.proxy];

    console.log("UDP data path: a session's DNAT vs the same stream routed without NAT");
    const sinkCmd = ["python3", `${ROOT}tests/udp_sink.py`, "33001"];
    const proxied: Array<{ mbit: number; loss: number }> = [];
    const routed: Array<{ mbit: number; loss: number }> = [];
    for (let r = 0; r < ROUNDS; r++) {
      proxied.push(
        await udpStream(bed.ns.client, [...viaProxy, ...sinkCmd], 40000 + r, IP.proxy, 33001),
      );
      routed.push(
        await udpStream(
          bed.ns.client,
          ["ip", "netns", "exec", bed.ns.a, ...sinkCmd],
          41000 + r,
          IP.a,
          33001,
        ),
      );
    }
    add({
      section: "UDP data path",
      metric: "throughput (1400-byte datagrams, one sender core)",
      unit: "Mbit/s",
      candidate: median(proxied.map((p) => p.mbit)),
      baseline: median(routed.map((p) => p.mbit)),
      baselineName: "routed, no NAT",
    });
    extra.udp_loss = {
      proxied: median(proxied.map((p) => p.loss)),
      routed: median(routed.map((p) => p.loss)),
    };

    console.log(`SSH bridge: ${SCP_MB} MB with scp, up and down`);
    const src = `${bed.dir}/bench.bin`;
    await must(["dd", "if=/dev/urandom", `of=${src}`, "bs=1M", `count=${SCP_MB}`, "status=none"]);
    await Deno.chmod(src, 0o644);
    const scpProxy = [...bed.clientArgs("scp", alice)];
    const scpNative = [...bed.clientArgs("scp", alice), "-P", "2222"];
    const scpDirect = [
      "ip",
      "netns",
      "exec",
      bed.ns.client,
      "scp",
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      `UserKnownHostsFile=${bed.knownHostsPath}`,
      "-i",
      directKey,
    ];
    const remote = (name: string, host: string, user?: string) =>
      `${user ? `${user}@` : ""}${host}:${bed.dataDir}/${name}`;
    const rates: Record<string, { up: number[]; down: number[] }> = {
      proxy: { up: [], down: [] },
      native: { up: [], down: [] },
      direct: { up: [], down: [] },
    };
    for (let r = 0; r < ROUNDS; r++) {
      for (
        const [name, argv, host, user] of [["proxy", scpProxy, IP.proxy, undefined], [
          "native",
          scpNative,
          IP.proxy,
          undefined,
        ], ["direct", scpDirect, IP.a, USERS.xfer]] as const
      ) {
        const target = `${name}.bin`;
        rates[name]!.up.push(SCP_MB / await timed([...argv, src, remote(target, host, user)]));
        rates[name]!.down.push(
          SCP_MB /
            await timed([...argv, remote(target, host, user), `${bed.dir}/${name}-back.bin`]),
        );
        await Deno.remove(`${bed.dataDir}/${target}`).catch(() => {});
        await Deno.remove(`${bed.dir}/${name}-back.bin`).catch(() => {});
      }
    }
    for (const dir of ["up", "down"] as const) {
      const proxy = median(rates.proxy!.up.length ? rates.proxy![dir] : []);
      add({
        section: "SSH bridge",
        metric: `scp ${SCP_MB} MB ${dir}`,
        unit: "MB/s",
        candidate: proxy,
        baseline: median(rates.native![dir]),
        baselineName: "native double hop",
      });
      add({
        section: "SSH bridge",
        metric: `scp ${SCP_MB} MB ${dir}`,
        unit: "MB/s",
        candidate: proxy,
        baseline: median(rates.direct![dir]),
        baselineName: "direct",
      });
    }
    await Deno.remove(src);

    console.log(`Session set-up: ssh … true, ${LATENCY_RUNS} runs each, interleaved`);
    const lat: Record<string, number[]> = { proxy: [], native: [], direct: [] };
    for (let i = 0; i < LATENCY_RUNS; i++) {
      lat.proxy!.push(await timed([...viaProxy, "true"]) * 1000);
      lat.native!.push(await timed([...viaNative, "true"]) * 1000);
      lat.direct!.push(await timed([...direct, "true"]) * 1000);
    }
    for (const p of [50, 95]) {
      add({
        section: "Session set-up",
        metric: `p${p}`,
        unit: "ms",
        candidate: percentile(lat.proxy!, p),
        baseline: percentile(lat.native!, p),
        baselineName: "native double hop",
      });
      add({
        section: "Session set-up",
        metric: `p${p}`,
        unit: "ms",
        candidate: percentile(lat.proxy!, p),
        baseline: percentile(lat.direct!, p),
        baselineName: "direct",
      });
    }

    console.log(`Memory: one idle session, then ${CONCURRENT_SESSIONS} concurrent`);
    const idle = await startReady([
      "sh",
      "-c",
      `echo ready; exec ${[...viaProxy, "sleep", "30"].join(" ")}`,
    ]);
    const idleNative = await startReady([
      "sh",
      "-c",
      `echo ready; exec ${[...viaNative, "sleep", "30"].join(" ")}`,
    ]);
    await new Promise((r) => setTimeout(r, 3000));
    const sessionPids = await pids("reverse --config", alice);
    const helperPids = await pids("dnat add .*--hold");
    const nativePids = await pids(`ssh -T -F /dev/null`, alice, ["ssh"]);
    const sessionKb = (await Promise.all(sessionPids.map(pssKb))).reduce((a, b) => a + b, 0);
    const helperKb = (await Promise.all(helperPids.map(pssKb))).reduce((a, b) => a + b, 0);
    const nativeKb = (await Promise.all(nativePids.map(pssKb))).reduce((a, b) => a + b, 0);
    add({
      section: "Memory",
      metric: "PSS of one idle session process",
      unit: "MiB",
      candidate: sessionKb / 1024,
      baseline: nativeKb / 1024,
      baselineName: "native hop's ssh client",
      note: `its sudo DNAT helper adds ${(helperKb / 1024).toFixed(1)} MiB`,
    });
    for (const p of [...sessionPids, ...helperPids, ...nativePids]) await run(["kill", String(p)]);
    await Promise.allSettled([idle.finish(), idleNative.finish()]);
    const many = await Promise.all(
      Array.from(
        { length: CONCURRENT_SESSIONS },
        () =>
          startReady(["sh", "-c", `echo ready; exec ${[...viaProxy, "sleep", "60"].join(" ")}`]),
      ),
    );
    for (
      let i = 0;
      i < 100 && (await pids("dnat add .*--hold")).length < CONCURRENT_SESSIONS;
      i++
    ) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const allSession = await pids("reverse --config", alice);
    const allHelper = await pids("dnat add .*--hold");
    const totalKb = (await Promise.all([...allSession, ...allHelper].map(pssKb))).reduce(
      (a, b) => a + b,
      0,
    );
    extra.memory_concurrent = {
      sessions: allSession.length,
      helpers: allHelper.length,
      total_pss_mib: Number((totalKb / 1024).toFixed(1)),
      per_session_mib: Number((totalKb / 1024 / Math.max(1, allSession.length)).toFixed(1)),
    };
    console.log(`  ${CONCURRENT_SESSIONS} sessions: ${JSON.stringify(extra.memory_concurrent)}`);
    for (const p of [...allSession, ...allHelper]) await run(["kill", String(p)]);
    await Promise.allSettled(many.map((m) => m.finish()));
  } finally {
    if (native) {
      try {
        native.kill("SIGTERM");
      } catch { /* gone */ }
      await native.status;
    }
    await bed.close();
  }
}

async function dnatBenchmarks(): Promise<void> {
  console.log("DNAT cost: add and delete with 0, 100, 1000 live sessions");
  const ns = `xpb${crypto.randomUUID().slice(0, 6)}`;
  await must(["ip", "netns", "add", ns]);
  try {
    const out = await must([
      "ip",
      "netns",
      "exec",
      ns,
      `${ROOT}.tools/bin/deno`,
      "run",
      "-A",
      "--quiet",
      "--cached-only",
      "--config",
      `${ROOT}deno.json`,
      `${ROOT}bench/dnat_cost.ts`,
    ], { timeoutMs: 600_000 });
    const results = JSON.parse(out) as Array<
      { backend: string; live: number; add_ms: number; del_ms: number }
    >;
    extra.dnat_cost = results;
    for (const backend of ["iptables", "nftables"]) {
      const base = results.find((r) => r.backend === backend && r.live === 0)!;
      for (const live of [100, 1000]) {
        const r = results.find((x) => x.backend === backend && x.live === live)!;
        add({
          section: "DNAT cost",
          metric: `${backend} add, ${live} live`,
          unit: "ms",
          candidate: r.add_ms,
          baseline: base.add_ms,
          baselineName: "0 live",
        });
        add({
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
    const conf = `${await Deno.makeTempDir()}/a.conf`;
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
          "dnat",
          "add",
          "--config",
          conf,
          "--session",
          crypto.randomUUID(),
          "--owner",
          "1",
          "--client",
          `198.18.9.${r + 1}`,
          "--proxy",
          "198.18.1.1",
          "--rule",
          "1",
          "--host",
          "0",
        ]) * 1000,
      );
    }
    extra.dnat_cli_add_ms = Number(median(cli).toFixed(1));
    console.log(
      `  dnat add through the CLI (process start-up included): ${extra.dnat_cli_add_ms} ms`,
    );
  } finally {
    await run(["ip", "netns", "del", ns]);
  }
}

async function forwardBenchmarks(): Promise<void> {
  console.log("Forward API: allocations per second, and UDP through an allocated port");
  const bed: ForwardBed = await createForwardBed();
  try {
    await Deno.writeTextFile(bed.configPath, forwardConfig(bed.dir));
    await must([
      BINARY,
      "forward",
      "user",
      "add",
      "bench",
      "--password-stdin",
      "--allow",
      // The outside server sits on a network the proxy is attached to: allowed explicitly, as policy requires.
      `${FIP.outside}/32`,
      "--config",
      bed.configPath,
    ], { stdin: "pw" });
    await bed.startDaemon(
      forwardConfig(bed.dir).replace(
        "<session_timeout>4</session_timeout>",
        "<session_timeout>600</session_timeout>",
      )
        .replace("<port_range_high>5199", "<port_range_high>6999"),
    );
    const client = await must([
      "ip",
      "netns",
      "exec",
      bed.ns.inside,
      `${ROOT}.tools/bin/deno`,
      "run",
      "-A",
      "--quiet",
      "--cached-only",
      "--config",
      `${ROOT}deno.json`,
      `${ROOT}bench/forward_client.ts`,
      `http://${FIP.proxyIn}:9091`,
      FIP.outside,
    ], { timeoutMs: 300_000 });
    const api = JSON.parse(client);
    add({
      section: "Forward API",
      metric: "allocations per second",
      unit: "/s",
      candidate: api.concurrent,
      baseline: api.sequential,
      baselineName: "sequential",
      note: "candidate: 20 concurrent clients",
    });
    // UDP through an allocated port vs routed straight to the outside server (routes added for the baseline only).
    const created = JSON.parse(
      await must([
        "ip",
        "netns",
        "exec",
        bed.ns.inside,
        "curl",
        "-s",
        "-d",
        JSON.stringify({ destination: FIP.outside, ssh_port: 22, udp_port: 33001 }),
        `http://${FIP.proxyIn}:9091/v1/sessions`,
        "-u",
        "bench:pw",
      ]),
    );
    await must(["ip", "-n", bed.ns.inside, "route", "add", FIP.outside, "via", FIP.proxyIn]);
    await must(["ip", "-n", bed.ns.outside, "route", "add", FIP.inside, "via", FIP.proxyOut]);
    const sink = [
      "ip",
      "netns",
      "exec",
      bed.ns.outside,
      "python3",
      `${ROOT}tests/udp_sink.py`,
      "33001",
    ];
    const viaPort: number[] = [];
    const routed: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      viaPort.push(
        (await udpStream(bed.ns.inside, sink, 42000 + r, FIP.proxyIn, created.port)).mbit,
      );
      routed.push((await udpStream(bed.ns.inside, sink, 43000 + r, FIP.outside, 33001)).mbit);
    }
    add({
      section: "Forward API",
      metric: "UDP through an allocated port",
      unit: "Mbit/s",
      candidate: median(viaPort),
      baseline: median(routed),
      baselineName: "routed, no NAT",
    });
  } finally {
    await bed.close();
  }
}

async function versions(): Promise<Record<string, string>> {
  const first = async (argv: string[]) =>
    ((await run(argv)).stdout || (await run(argv)).stderr).trim().split("\n")[0] ?? "";
  return {
    xferproxy: await first([BINARY, "version"]),
    kernel: await first(["uname", "-r"]),
    iptables: await first(["iptables", "--version"]),
    nftables: await first(["nft", "--version"]),
    openssh: (await run(["ssh", "-V"])).stderr.trim(),
    python: await first(["python3", "--version"]),
    cores: String(navigator.hardwareConcurrency),
  };
}

function markdown(info: Record<string, string>, started: Date, seconds: number): string {
  const lines = [
    "# Benchmark results",
    "",
    `Run ${started.toISOString()} in ${
      seconds.toFixed(0)
    } s on ${info.cores} cores; ${ROUNDS} alternating rounds per pair, medians.`,
    `Versions: ${info.xferproxy}; kernel ${info.kernel}; ${info.iptables}; ${info.nftables}; ${info.openssh}; ${info.python}.`,
    "Ratios are candidate / baseline from the same run: above 1 means more (throughput) or slower (latency, memory, cost).",
    "",
    "| Section | Metric | xferproxy | Baseline | Ratio | Note |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.section} | ${r.metric} | ${r.candidate.toFixed(2)} ${r.unit} | ${r.baselineName}: ${
        r.baseline.toFixed(2)
      } ${r.unit} | ${r.ratio} | ${r.note ?? ""} |`
    ),
    "",
    "Extra measurements:",
    "",
    "```json",
    JSON.stringify(extra, null, 2),
    "```",
    "",
    "Reproduce: `make bench` (as root). `BENCH_ROUNDS` and `BENCH_SCP_MB` shorten a run.",
    "",
  ];
  return lines.join("\n");
}

if (Deno.uid() !== 0) {
  console.error("make bench builds network namespaces and test users: run it as root");
  Deno.exit(1);
}
const started = new Date();
const t0 = performance.now();
await reverseBenchmarks();
await dnatBenchmarks();
await forwardBenchmarks();
const info = await versions();
const seconds = (performance.now() - t0) / 1000;
await Deno.writeTextFile(
  `${ROOT}bench/results.json`,
  JSON.stringify(
    { started: started.toISOString(), seconds, rounds: ROUNDS, versions: info, rows, extra },
    null,
    2,
  ) + "\n",
);
await Deno.writeTextFile(`${ROOT}bench/results.md`, markdown(info, started, seconds));
console.log(`\nWrote bench/results.md and bench/results.json in ${seconds.toFixed(0)} s`);
