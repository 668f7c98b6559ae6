/**
 * Forward daemon churn: clients allocate, keep alive and release sessions
 * through the API for BENCH_CHURN_SECONDS (600) on BENCH_CHURN_BACKEND
 * (iptables), while the daemon's open files and memory are read from /proc.
 * Flat from start (after a warm-up) to end means nothing leaks per session;
 * any session rule left in the kernel afterwards counts as a failure.
 * @module
 */
// deno-lint-ignore-file no-console
import { BINARY, FIP, type ForwardBed, must, ROOT } from "../tests/testbed/mod.ts";
import type { Report } from "./_report.ts";
import { denoScriptInNs, memoryKb, openFds } from "./_measure.ts";
import {
  API_USER,
  benchForwardBed,
  FORWARD_BACKENDS,
  type ForwardBackend,
} from "./_forward_bed.ts";

/** Concurrent API clients, each one allocate/keepalive/release cycle a second. */
const CLIENTS = 4;

/** One reading of the daemon process. */
interface Sample {
  seconds: number;
  fds: number;
  rssKb: number;
  pssKb: number;
  anonKb: number;
}

/** What the churn client printed. */
interface ChurnCounts {
  cycles: number;
  allocations: number;
  keepalives: number;
  releases: number;
  failures: number;
  errors: string[];
}

/** The churn section's settings from the environment. */
function settings(): { seconds: number; backend: ForwardBackend } {
  const seconds = Number(Deno.env.get("BENCH_CHURN_SECONDS") ?? "600");
  if (!Number.isInteger(seconds) || seconds < 1) {
    throw new Error(`BENCH_CHURN_SECONDS must be a whole number of seconds, got ${seconds}`);
  }
  const backend = Deno.env.get("BENCH_CHURN_BACKEND") ?? "iptables";
  const known = FORWARD_BACKENDS.find((b) => b === backend);
  if (!known) {
    throw new Error(`BENCH_CHURN_BACKEND must be ${FORWARD_BACKENDS.join(" or ")}, got ${backend}`);
  }
  return { seconds, backend: known };
}

/** The daemon's pid, checked to be its Deno process (not a launcher or wrapper in between). */
async function daemonDeno(bed: ForwardBed): Promise<number> {
  const pid = bed.daemonPid();
  if (pid === undefined) throw new Error("the forward daemon is not running");
  const exe = await Deno.readLink(`/proc/${pid}/exe`);
  const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
  if (!exe.endsWith("/deno") || !argv.includes("forward")) {
    throw new Error(`pid ${pid} is not the forward daemon's Deno: ${exe} ${argv.join(" ")}`);
  }
  return pid;
}

async function sample(pid: number, since: number): Promise<Sample> {
  const memory = await memoryKb(pid);
  return {
    seconds: Math.round((performance.now() - since) / 1000),
    fds: await openFds(pid),
    rssKb: memory.rss,
    pssKb: memory.pss,
    anonKb: memory.anon,
  };
}

/** Runs the churn client for `seconds` from the inside namespace. */
async function churn(bed: ForwardBed, seconds: number): Promise<ChurnCounts> {
  return JSON.parse(
    await must(
      denoScriptInNs(
        bed.ns.inside,
        `${ROOT}bench/forward_churn_client.ts`,
        `http://${FIP.proxyIn}:9091`,
        FIP.outside,
        String(seconds),
        String(CLIENTS),
        `${API_USER.name}:${API_USER.password}`,
      ),
      { timeoutMs: (seconds + 120) * 1000 },
    ),
  );
}

/**
 * Session state left in the proxy namespace: iptables rules tagged with a session id, elements
 * of our nftables maps and sets, and sessions `dnat list` still shows (with the daemon running:
 * its exit would remove them and hide a leak).
 */
async function leftovers(bed: ForwardBed): Promise<{ count: number; text: string }> {
  const inProxy = (...argv: string[]) => must(["ip", "netns", "exec", bed.ns.proxy, ...argv]);
  const lines: string[] = [];
  for (const save of ["iptables-save", "ip6tables-save"]) {
    lines.push(
      ...(await inProxy(save)).split("\n").filter((l) => /xferproxy:[0-9a-f-]{36}:/.test(l)),
    );
  }
  lines.push(
    ...(await inProxy("nft", "list", "ruleset")).split("\n").filter((l) => /elements = /.test(l)),
  );
  lines.push(
    ...(await inProxy(BINARY, "dnat", "list", "--config", bed.configPath)).split("\n")
      .filter((l) => l.trim() !== "" && l !== "no xferproxy DNAT sessions"),
  );
  return { count: lines.length, text: lines.slice(0, 5).join("\n") };
}

/** The forward daemon's churn: open fds and PSS end vs start, cycles done, failures. */
export async function forwardChurn(report: Report): Promise<void> {
  const { seconds, backend } = settings();
  // The daemon's heap grows to its working size in the first minute or two under this load
  // (2026-12-05: 30.9 to 51.6 MiB by 90 s, then flat to 600 s), so the start is read after that.
  const warmUp = Math.min(120, Math.max(5, Math.round(seconds / 5)));
  console.log(
    `Forward churn (${backend}): ${CLIENTS} clients allocate, keep alive and release for ${seconds} s`,
  );
  // The bed's config: keepalive_interval 1 s, session_timeout 4 s, cleanup_interval 1 s.
  const bed = await benchForwardBed(backend);
  try {
    const pid = await daemonDeno(bed);
    const settle = () => new Promise((resolve) => setTimeout(resolve, 2000));
    const warm = await churn(bed, warmUp);
    await settle();
    const t0 = performance.now();
    const start = await sample(pid, t0);
    const samples: Sample[] = [start];
    let done = false;
    const every = Math.max(5, Math.round(seconds / 20));
    const sampler = (async () => {
      while (!done) {
        for (let s = 0; s < every && !done; s++) {
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
        if (!done) samples.push(await sample(pid, t0));
      }
    })();
    const counts = await churn(bed, seconds).finally(() => done = true);
    await sampler;
    await settle();
    const end = await sample(pid, t0);
    samples.push(end);
    const left = await leftovers(bed);
    await daemonDeno(bed); // still the same daemon: it did not restart underneath
    const failures = warm.failures + counts.failures + left.count;
    const mib = (kb: number) => kb / 1024;
    report.extra[`forward_churn_${backend}`] = {
      seconds,
      warm_up_seconds: warmUp,
      clients: CLIENTS,
      pid,
      warm_up: warm,
      churn: counts,
      leftover_rules: left,
      samples,
    };
    report.add({
      section: "Forward churn",
      metric: `${backend}: daemon open fds, end vs start`,
      unit: "fds",
      candidate: end.fds,
      baseline: start.fds,
      baselineName: "start, after warm-up",
      note: `${seconds} s; min ${Math.min(...samples.map((s) => s.fds))}, max ${
        Math.max(...samples.map((s) => s.fds))
      } over ${samples.length} samples`,
    });
    report.add({
      section: "Forward churn",
      metric: `${backend}: daemon PSS, end vs start`,
      unit: "MiB",
      candidate: mib(end.pssKb),
      baseline: mib(start.pssKb),
      baselineName: "start, after warm-up",
      note: `RSS ${mib(start.rssKb).toFixed(1)} → ${mib(end.rssKb).toFixed(1)} MiB; PSS max ${
        mib(Math.max(...samples.map((s) => s.pssKb))).toFixed(1)
      } MiB`,
    });
    // A leak grows with the sessions served; a heap settling does not: the second half shows which.
    const halfWay = samples[Math.floor((samples.length - 1) / 2)] ?? start;
    report.add({
      section: "Forward churn",
      metric: `${backend}: daemon anonymous memory (heap), end vs start`,
      unit: "MiB",
      candidate: mib(end.anonKb),
      baseline: mib(start.anonKb),
      baselineName: "start, after warm-up",
      note: `max ${
        mib(Math.max(...samples.map((s) => s.anonKb))).toFixed(1)
      } MiB; its own memory, unlike PSS, whatever else maps the same files`,
    });
    report.add({
      section: "Forward churn",
      metric: `${backend}: daemon anonymous memory (heap), end vs half-way`,
      unit: "MiB",
      candidate: mib(end.anonKb),
      baseline: mib(halfWay.anonKb),
      baselineName: `at ${halfWay.seconds} s`,
    });
    report.add({
      section: "Forward churn",
      metric: `${backend}: allocate, 3 keepalives, release: cycles done`,
      unit: "cycles",
      candidate: counts.cycles,
      baseline: CLIENTS * seconds,
      baselineName: `planned, ${CLIENTS} clients at 1/s`,
      note:
        `${counts.allocations} allocations, ${counts.keepalives} keepalives, ${counts.releases} releases`,
    });
    report.add({
      section: "Forward churn",
      metric: `${backend}: failed requests and session rules left after the end`,
      unit: "failures",
      candidate: failures,
      baseline: 0,
      baselineName: "target",
      note: `${left.count} left in the kernel or registry${
        failures ? `; first: ${[...warm.errors, ...counts.errors, left.text][0]}` : ""
      }`,
    });
  } finally {
    await bed.close();
  }
}
