/**
 * The real system under forward mode (forward/run.ts's `ForwardPlatform`):
 * the API sockets, iptables and conntrack, the users file, the generated
 * HTTPS certificate, signals, and the client helper's stdio.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { ForwardPlatform } from "../forward/run.ts";
import { conntrackTool } from "../dnat/conntrack.ts";
import { createBackend } from "../dnat/backends.ts";
import { logger, startedBySystemd } from "../log/mod.ts";
import { forwardConnect } from "./forward_client.ts";
import {
  localAddressFor,
  ownNetworks,
  portFree,
  readUsersText,
  resolveName,
  writeUsersText,
} from "./forward_host.ts";
import { forwardingEnabled, prepareDnatDirectory, registryStore } from "./dnat_host.ts";
import { openLogOutputs } from "./log_outputs.ts";
import { realRunner } from "./runner.ts";
import { commandProcReader } from "./proc_readers.ts";
import { procProcessTable } from "../dnat/owner.ts";
import { serveHttp } from "./http_server.ts";
import { ensureSelfSigned } from "./self_signed.ts";
import { catchStrayRejections, terminationSignal } from "./session_io.ts";
import { realFs } from "./fs.ts";

/** The real platform of forward mode. */
export const forwardPlatform: ForwardPlatform = {
  fs: realFs,
  openLogs: (directory) =>
    openLogOutputs({
      stderr: true,
      systemd: startedBySystemd((name) => Deno.env.get(name)),
      ...(directory ? { directory } : {}),
    }),
  connect: forwardConnect,
  readUsers: readUsersText,
  writeUsers: writeUsersText,
  readStdin: async () => await new Response(Deno.stdin.readable).text(),
  newPassword: () => crypto.randomUUID().replaceAll("-", ""),
  catchStrayRejections,
  async daemonHost(config, loadUsers) {
    // /proc through head(1): the daemon holds no FFI.
    const proc = commandProcReader(realRunner);
    const processes = procProcessTable(proc);
    const own = (await processes.lookup([Deno.pid])).get(Deno.pid);
    if (!own) throw new Error("Cannot read this process's start time from ps");
    const termination = terminationSignal();
    return {
      host: {
        serve: (options, handler) =>
          serveHttp({ ...options, onEvent: floodReporter(logger("forward", "http")) }, handler),
        readFile: (path) => Deno.readTextFile(path),
        defaultTls: () => ensureSelfSigned(config.server.stateDirectory, realRunner),
        localAddressFor: (client) => localAddressFor(realRunner, client),
        ownNetworks: () => ownNetworks(realRunner),
        portFree,
        resolve: resolveName,
        loadUsers,
        forwardingEnabled: (family) => forwardingEnabled(proc, realRunner, family),
        processes,
        stop: termination.signal,
        owner: { pid: Deno.pid, start: own.start },
        now: () => Date.now(),
        newId: () => crypto.randomUUID(),
      },
      backend: await createBackend(config.server.dnatBackend, { runner: realRunner }),
      conntrack: conntrackTool(realRunner),
      store: registryStore(
        await prepareDnatDirectory(config.server.stateDirectory),
        (message) => logger("forward").warn(message),
      ),
      close: () => termination.dispose(),
    };
  },
};

/** Logs refused connections and accept errors at most once per 10 s, with how many there were. */
function floodReporter(log: Logger): (event: string, detail: Record<string, unknown>) => void {
  let last = 0;
  let suppressed = 0;
  return (event, detail) => {
    if (event === "connection_error") {
      return log.debug("Connection from {client} failed: {error}", detail);
    }
    const now = Date.now();
    if (now - last < 10_000) {
      suppressed++;
      return;
    }
    last = now;
    log.warn(
      event === "refused"
        ? "Refusing connections over the limits: {client} ({suppressed} more since the last line)"
        : "Cannot accept connections: {error} ({suppressed} more since the last line)",
      { ...detail, suppressed },
    );
    suppressed = 0;
  };
}
