/**
 * The real system under the dnat actions (dnat/run.ts's `DnatPlatform`):
 * netfilter through iptables, nft or libnftables, conntrack, ps, the
 * root-only registry, and the service's signals and heartbeat.
 * @module
 */

import type { DnatPlatform } from "../dnat/run.ts";
import { conntrackTool } from "../dnat/conntrack.ts";
import { createBackend } from "../dnat/backends.ts";
import { procProcessTable } from "../dnat/owner.ts";
import { openLogOutputs } from "./log_outputs.ts";
import { startedBySystemd } from "../log/mod.ts";
import { realRunner } from "./runner.ts";
import { commandProcReader, libcProcReader } from "./proc_readers.ts";
import { realServiceHost } from "./service_host.ts";
import { openNft } from "./libnftables.ts";
import { realFs } from "./fs.ts";
import { drainFile } from "./drain_file.ts";
import { forwardingEnabled, prepareDnatDirectory, registryStore, trustedFs } from "./dnat_host.ts";

/** The real platform of the dnat actions. */
export const dnatPlatform: DnatPlatform = {
  fs: realFs,
  trustedFs,
  openLogs: (service) => (directory) =>
    openLogOutputs({
      ...(directory ? { directory } : {}),
      ...(service ? { stderr: true, systemd: startedBySystemd((name) => Deno.env.get(name)) } : {}),
    }),
  prepareDirectory: prepareDnatDirectory,
  proc: () => commandProcReader(realRunner),
  pid: Deno.pid,
  newId: () => crypto.randomUUID(),
  dnatDeps: async (config, dir, log, service) => {
    // The service reads /proc through libc; a one-shot call through head(1) (it holds no FFI).
    const proc = service ? libcProcReader() : commandProcReader(realRunner);
    return {
      // The service keeps one libnftables context; a one-off call runs nft.
      backend: await createBackend(config.server.dnatBackend, {
        runner: realRunner,
        ...(service ? { nft: () => openNft(realRunner) } : {}),
      }),
      conntrack: conntrackTool(realRunner),
      store: registryStore(dir, (message) => log.warn(message)),
      processes: procProcessTable(proc),
      config,
      forwardingEnabled: (family) => forwardingEnabled(proc, realRunner, family),
      now: Date.now,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      log,
    };
  },
  serviceHost: realServiceHost,
  drain: drainFile,
  deadline(ms, line) {
    const timer = setTimeout(() => {
      Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
      Deno.exit(1);
    }, ms);
    // Never what keeps the process alive: only what ends it when nothing else did.
    Deno.unrefTimer(timer);
    return () => clearTimeout(timer);
  },
};
