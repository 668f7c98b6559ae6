/**
 * The DNAT service's own parts on the real system: the sessions' socket,
 * the fd loop with its exit watches, /proc through libc, the balancer kept
 * in memory, the reachability check behind faulty marks, what deciding a
 * session needs (the probe, NSS accounts, the config file's identity), the
 * SSH legs' counters from conntrack (over ctnetlink), the heartbeat, and the stop signals.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { ServiceHost } from "../dnat/serve.ts";
import type { ExitWatch, SshCounters } from "../dnat/service_sessions.ts";
import { memoryJson } from "../balancer/shared_json.ts";
import { createBalancer } from "../balancer/balancer.ts";
import { errorText } from "../errors.ts";
import { epollEvents, type FdEvents } from "./fd_events.ts";
import { pidfdExitWatch } from "./exit_watch.ts";
import { groupId, userId } from "./libc.ts";
import { withHeldTcp } from "./held_sockets.ts";
import { firstTimes } from "../log/once.ts";
import { isExecutable, realProbe, realReach } from "./upstream_probe.ts";
import { libcProcReader } from "./proc_readers.ts";
import { listenUnix, type UnixServer } from "./unix_server.ts";
import { terminationSignal } from "./session_io.ts";
import { type FollowedFlows, followFlowEvents } from "./flow_events.ts";
import { enableAccounting, writeHeartbeat } from "./dnat_host.ts";
import { realRunner } from "./runner.ts";
import { conntrackSocket } from "./conntrack_socket.ts";
import { DEFAULT_LIMITS, serveHttp } from "./http_server.ts";
import { logLinesLost } from "./log_outputs.ts";
import { boundAllocator, releaseMemory } from "./release_pages.ts";

/** The status endpoints serve a scraper and a load balancer's checks: a few connections, short. */
const STATUS_LIMITS = {
  ...DEFAULT_LIMITS,
  requestTimeoutMs: 5000,
  writeTimeoutMs: 5000,
  maxConnections: 64,
  maxPerAddress: 16,
  maxHeadBytes: 8 * 1024,
  maxBodyBytes: 0,
};

/** Kinds of failure to read the closing line's counts said, at most: one of each is enough. */
const MAX_FAILURES_SAID = 8;

/** How long the closing line waits for the client's connection to finish closing. */
const CLOSE_WAIT_MS = 2000;

/** True when `host:port` answers with an SSH version line within the time. */
async function answersSsh(hostname: string, port: number, timeoutMs: number): Promise<boolean> {
  const deadline = AbortSignal.timeout(timeoutMs);
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Promise.race([
      Deno.connect({ hostname, port }),
      new Promise<never>((_, reject) =>
        deadline.addEventListener("abort", () => reject(new Error("timeout")), { once: true })
      ),
    ]);
    const buffer = new Uint8Array(256);
    const read = conn.read(buffer);
    const n = await Promise.race([
      read,
      new Promise<null>((resolve) =>
        deadline.addEventListener("abort", () => resolve(null), { once: true })
      ),
    ]);
    return n !== null && new TextDecoder().decode(buffer.subarray(0, n)).includes("SSH-");
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}

function socketDirectory(path: string): string {
  return path.replace(/\/[^/]*$/, "") || "/";
}

/**
 * The socket's directory is the gate: root's, group `gid`, mode 750, so only root and the proxy
 * group may reach the socket in it, and nobody else can put one there. The packages'
 * tmpfiles.d file makes it so at boot; the service fixes the group when it may (outside a unit).
 */
async function gateDirectory(dir: string, gid: number, group: string): Promise<void> {
  let info = await Deno.lstat(dir);
  if (info.isDirectory && info.uid === 0 && info.gid !== gid) {
    await Deno.chown(dir, 0, gid).catch(() => {});
    await Deno.chmod(dir, 0o750).catch(() => {});
    info = await Deno.lstat(dir);
  }
  if (!info.isDirectory || info.uid !== 0 || info.gid !== gid || ((info.mode ?? 0) & 0o027) !== 0) {
    throw new Error(
      `"${dir}" must be a directory of root's with group ${group} and mode 750: install -d -m 750 -g ${group} ${dir}`,
    );
  }
}

/** The service host over the real system. */
export function realServiceHost(
  dir: string,
  log: Logger,
): ServiceHost {
  boundAllocator();
  const termination = terminationSignal();
  const proc = withHeldTcp(libcProcReader(), (why) =>
    log.info(
      "Sessions' SSH connections are read from /proc/PID/net/tcp (a walk of every TCP socket on the host, for each session): {why}",
      { why },
    ));
  let events: FdEvents | undefined;
  const loop = () => (events ??= epollEvents());
  let server: UnixServer | undefined;
  let exits: ExitWatch | undefined;
  let status: { shutdown(): Promise<void> } | undefined;
  let flows: FollowedFlows | undefined;
  const conntrack = conntrackSocket();
  const firstCountsFailure = firstTimes(MAX_FAILURES_SAID);
  let stopping = false;
  return {
    stop: termination.signal,
    heartbeat: (status) => writeHeartbeat(dir, Date.now(), { ...status }),
    enableAccounting: () => enableAccounting(realRunner),
    proc,
    exits: {
      watch: (owner, pidfd, onExit) =>
        (exits ??= pidfdExitWatch(loop(), proc)).watch(owner, pidfd, onExit),
      release: (pidfd) => (exits ??= pidfdExitWatch(loop(), proc)).release(pidfd),
    },
    balancer: createBalancer(memoryJson(), Date.now),
    reachable: (endpoint, timeoutMs) => answersSsh(endpoint.ip.text, endpoint.port, timeoutMs),
    deciding: {
      probe: realProbe,
      reach: realReach,
      userId,
      isExecutable,
      async fileIdentity(path) {
        try {
          const info = await Deno.stat(path);
          return info.dev !== undefined && info.ino !== null
            ? { dev: info.dev, ino: info.ino }
            : undefined;
        } catch {
          return undefined;
        }
      },
    },
    async sshCounters(ssh): Promise<SshCounters | undefined> {
      const deadline = Date.now() + CLOSE_WAIT_MS;
      try {
        for (;;) {
          const tracked = await conntrack.connection(ssh);
          if (!tracked) return undefined;
          if (tracked.state !== "ESTABLISHED" || Date.now() >= deadline) {
            return { in: tracked.original, out: tracked.reply };
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } catch (error) {
        // Closing lines then go without byte counts: each kind of failure said once.
        const text = errorText(error);
        if (!stopping && firstCountsFailure(text)) {
          log.warn("Cannot read SSH legs' byte counts from conntrack for closing lines: {error}", {
            error: text,
          });
        }
        return undefined;
      }
    },
    followFlows: () => (flows ??= followFlowEvents(log)),
    async listen(path, group, maxLine, onConnection) {
      const gid = groupId(group);
      if (gid === undefined) {
        throw new Error(
          `group "${group}" does not exist: create it (groupadd ${group}) or set <proxy_group>`,
        );
      }
      await Deno.mkdir(socketDirectory(path), { recursive: true, mode: 0o750 });
      await gateDirectory(socketDirectory(path), gid, group);
      server = listenUnix(path, loop(), maxLine, onConnection);
      // The directory decides who reaches it; the socket itself is root's.
      await Deno.chmod(path, 0o666);
    },
    logLinesLost,
    releaseMemory,
    async serveStatus(endpoint, respond) {
      status = await serveHttp(
        { hostname: endpoint.ip.text, port: endpoint.port, limits: STATUS_LIMITS },
        (request) => Promise.resolve(respond(request)),
      );
    },
    async close() {
      stopping = true;
      termination.dispose();
      try {
        await status?.shutdown();
      } finally {
        server?.close();
        // Its conntrack child would outlive a service that never reached this.
        await flows?.close();
        await events?.close();
        conntrack.close();
      }
      await Deno.remove(`${dir}/service.json`).catch((error) =>
        log.debug("Cannot remove the heartbeat: {error}", { error: errorText(error) })
      );
    },
  };
}
