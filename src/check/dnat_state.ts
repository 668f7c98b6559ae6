/**
 * What `check system` says about reverse sessions' hand-off and UDP
 * forwarding: OpenSSH's client for the hand-off, the state directory's
 * layout (root's, with a group-shared balancer directory), whether the DNAT
 * service runs, and sessions whose owner has ended but whose rules remain.
 * @module
 */

import type { Config } from "../config/mod.ts";
import { isAlive, procProcessTable } from "../dnat/owner.ts";
import { splitHeadOutput } from "../dnat/procfs.ts";
import { parseRegistry } from "../dnat/registry.ts";
import { parseRuleTag } from "../dnat/types.ts";
import { SSH_PATH } from "../ssh/handoff.ts";
import { type Finding, finding } from "./findings.ts";
import { type CheckHost, modeText } from "./host.ts";
import { installHint } from "../process/packages.ts";
import { DRAIN_FILE, parseDrainMark } from "../dnat/drain.ts";

/** The DNAT service writes its heartbeat every 5 s; older than this, it is not running. */
export const HEARTBEAT_STALE_MS = 15_000;

/** Findings about the hand-off and the DNAT state; `now` is the audit's clock. */
export async function checkDnatState(
  host: CheckHost,
  config: Config,
  now: number,
): Promise<Finding[]> {
  // Reverse and forward sessions alike: a removal the kernel refused is retried until it goes.
  const out: Finding[] = await checkRemovals(host, `${config.server.stateDirectory}/dnat`, now);
  if (!config.server.rproxy.enabled) return out;
  if (!(await host.stat(SSH_PATH))) {
    out.push(finding.error(
      "handoff.ssh",
      `${SSH_PATH} is missing: reverse sessions are handed to OpenSSH's client`,
      installHint("ssh"),
    ));
  }
  const state = config.server.stateDirectory;
  const info = await host.stat(state);
  if (!info || !info.isDirectory) {
    out.push(finding.error(
      "dirs.state",
      `state directory ${state} does not exist`,
      `install -d -m 755 ${state} && install -d -m 2770 -g xferproxy ${state}/balancer`,
    ));
    return out;
  }
  if (info.uid !== 0 || (info.mode & 0o022) !== 0) {
    out.push(finding.error(
      "dirs.state",
      `state directory ${state} must be root's and writable by root only (uid ${info.uid}, mode ${
        modeText(info.mode)
      }): the DNAT registry and lock live in it`,
      `chown root ${state} && chmod 755 ${state}; sessions share ${state}/balancer instead`,
    ));
  }
  const balancer = await host.stat(`${state}/balancer`);
  if (!balancer || !balancer.isDirectory || (balancer.mode & 0o020) === 0) {
    out.push(finding.warning(
      "dirs.balancer",
      `${state}/balancer is missing or not group-writable: sessions cannot share round-robin turns and faulty marks`,
      `install -d -m 2770 -g xferproxy ${state}/balancer`,
    ));
  }
  if (host.root === "/") out.push(...await checkService(host, `${state}/dnat`, now));
  return out;
}

/** Sessions whose forwarding the kernel refused to remove: still recorded, being retried. */
async function checkRemovals(host: CheckHost, dir: string, now: number): Promise<Finding[]> {
  const text = await host.readText(`${dir}/sessions.json`);
  if (text === undefined) return [];
  const pending = parseRegistry(text).registry.entries.filter((e) => e.removing !== undefined);
  if (pending.length === 0) return [];
  return [finding.warning(
    "dnat.removing",
    `${pending.length} session(s) whose forwarding netfilter refused to remove are being retried (${
      pending.map((e) =>
        `${e.id.slice(0, 8)} for ${Math.round((now - (e.removing ?? now)) / 1000)} s`
      ).join(", ")
    })`,
    "read the log for netfilter's reason (journalctl -u xferproxy-forward -u xferproxy-dnat); xferproxy dnat list marks them (removing)",
  )];
}

/** Which of `pids` run, with their start times, through check's one /proc query. */
async function running(host: CheckHost, pids: readonly number[]) {
  const read = await host.run({ kind: "proc_stat", pids });
  const texts = splitHeadOutput(read?.stdout ?? "");
  return procProcessTable({
    readTexts: () => Promise.resolve(texts),
    linkTargets: () => Promise.resolve([]),
  }).lookup(pids).catch(() => new Map());
}

interface Heartbeat {
  pid?: number;
  updated?: number;
  socket?: string;
  socketError?: string;
  configError?: string;
  /** What /healthz answers (the same judgement: check holds no network permission). */
  health?: string;
  /** Log lines it could not write since it started. */
  log_lines_lost?: number;
  /** Why /metrics and /healthz are not served. */
  status_error?: string;
}

async function checkService(host: CheckHost, dir: string, now: number): Promise<Finding[]> {
  const out: Finding[] = [];
  const heartbeat = await host.readText(`${dir}/service.json`);
  const beat = heartbeat === undefined ? undefined : (() => {
    try {
      return JSON.parse(heartbeat) as Heartbeat;
    } catch {
      return undefined;
    }
  })();
  const dirInfo = await host.stat(dir);
  const fresh = beat?.updated !== undefined && now - beat.updated < HEARTBEAT_STALE_MS;
  // A heartbeat outlives a kill -9 by up to 15 s: its pid must still run.
  const alive = fresh && beat?.pid !== undefined &&
    (await running(host, [beat.pid])).has(beat.pid);
  if (alive && beat?.socketError) {
    out.push(finding.error(
      "dnat.socket",
      `the DNAT service runs (pid ${beat.pid}) but sessions cannot reach it (${beat.socketError}): they decide in their own process (slower to start), FASP sessions fall back to sudo and get no closing line`,
      "fix what it says, then systemctl restart xferproxy-dnat",
    ));
  } else if (alive) {
    out.push(finding.info(
      "dnat.service",
      `the DNAT service runs (pid ${beat?.pid}); it decides and registers sessions through ${
        beat?.socket ?? "its socket"
      }, no sudo`,
    ));
  }
  const drainText = await host.readText(`${dir}/${DRAIN_FILE}`);
  if (drainText !== undefined) {
    const mark = parseDrainMark(drainText, now);
    out.push(finding.warning(
      "dnat.drained",
      `this node is drained since ${new Date(mark.since).toISOString()}${
        mark.reason ? ` (${mark.reason})` : ""
      }: new reverse sessions are refused, /healthz answers 503`,
      "xferproxy dnat undrain, when the maintenance is over",
    ));
  }
  if (alive) {
    // Draining, the socket and the config have their own findings; netfilter is said here.
    if (beat?.health?.startsWith("netfilter:")) {
      out.push(finding.warning(
        "dnat.health",
        `the DNAT service reports itself unhealthy (${beat.health}): a load balancer asking /healthz sends new sessions elsewhere`,
        "fix what it says; /healthz answers 200 again by itself",
      ));
    }
    if (beat?.status_error) {
      out.push(finding.error(
        "dnat.status",
        `the DNAT service cannot serve /metrics and /healthz (${beat.status_error}): a load balancer asking it sees a dead node, and whatever holds the port answers in its place`,
        "free <metrics_address>'s port (ss -ltnp) or choose another; the service tries again every 5 s",
      ));
    }
    if (beat?.log_lines_lost) {
      out.push(finding.warning(
        "logs.lost",
        `the DNAT service could not write ${beat.log_lines_lost} log line(s) since it started (log directory full or unwritable): closing lines and audit lines are missing`,
        "free space in <log_directory> or fix its permissions; the service writes again by itself (syslog says when)",
      ));
    }
    if (beat?.configError) {
      out.push(finding.error(
        "dnat.config",
        `the DNAT service keeps its last good config: the file on disk is invalid (${beat.configError})`,
        "fix the file (xferproxy check config); the service picks it up within a second",
      ));
    }
  } else if (dirInfo && heartbeat === undefined && (await host.list(dir)).length === 0) {
    out.push(finding.info("dnat.service", `cannot read ${dir} (run check as root)`));
  } else {
    out.push(finding.warning(
      "dnat.service",
      `the DNAT service is not running${
        fresh ? ` (its pid ${beat?.pid} is gone)` : ""
      }: FASP sessions fall back to "sudo xferproxy dnat add", ended sessions keep their UDP forwarding until the next session starts, source ports are not learned, rules a firewall reload drops are not put back, and no session gets its closing line`,
      "systemctl enable --now xferproxy-dnat (docs/dnat.md)",
    ));
  }
  const owners = new Map<string, { pid: number; start: number }>();
  const registry = await host.readText(`${dir}/sessions.json`);
  if (registry !== undefined) {
    for (const e of parseRegistry(registry).registry.entries) {
      if (e.forwarding) owners.set(e.id, e.owner);
    }
  }
  const save = await host.run({ kind: "iptables_save" });
  for (const m of (save?.stdout ?? "").matchAll(/--comment "?(xferproxy:[^" ]+)"?/g)) {
    const tag = parseRuleTag(m[1] as string);
    if (tag) owners.set(tag.id, tag.owner);
  }
  if (owners.size === 0) {
    out.push(finding.info("dnat.rules", "no session holds UDP forwarding"));
    return out;
  }
  const live = await running(host, [...new Set([...owners.values()].map((o) => o.pid))]);
  const ended = [...owners].filter(([, owner]) => !isAlive(owner, live));
  if (ended.length === 0) {
    out.push(finding.info("dnat.rules", `${owners.size} live session(s) hold UDP forwarding`));
  } else {
    out.push(finding.warning(
      "dnat.orphaned",
      `${ended.length} session(s) whose owner has ended still hold UDP forwarding (${
        ended.map(([id, o]) => `${id.slice(0, 8)} pid ${o.pid}`).join(", ")
      })`,
      "start the DNAT service, or run xferproxy dnat reap",
    ));
  }
  return out;
}
