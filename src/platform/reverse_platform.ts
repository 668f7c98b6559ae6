/**
 * The real system under a reverse session (reverse/run.ts's
 * `ReversePlatform`): files, syslog or the log file, the client's stderr,
 * the balancer's shared state, the host key probe, the sudo DNAT call and
 * the exec into ssh.
 * @module
 */

import type { ReversePlatform } from "../reverse/run.ts";
import { balancerPicker, createBalancer } from "../balancer/balancer.ts";
import { fallbackRegistrar, serviceRegistrar } from "../reverse/registrar.ts";
import { connectService } from "./service_link.ts";
import { logger } from "../log/mod.ts";
import { isExecutable, realProbe } from "./upstream_probe.ts";
import { openLogOutputs } from "./log_outputs.ts";
import { openSharedJson } from "./locked_file.ts";
import { catchStrayRejections, writeStderrLine } from "./session_io.ts";
import { realFs } from "./fs.ts";
import { sudoDnatCall } from "./dnat_call.ts";
import { replaceProcess } from "./exec.ts";

/** Where the sessions' shared balancer state lives inside the state directory. */
export const BALANCER_SUBDIRECTORY = "balancer";

/** The real platform of a reverse session. */
export const reversePlatform: ReversePlatform = {
  fs: realFs,
  openLogs: (directory) => openLogOutputs(directory ? { directory } : {}),
  tellClient: writeStderrLine,
  catchStrayRejections,
  sessionDeps: (self, log) => ({
    pid: Deno.pid,
    uid: Deno.uid() ?? -1,
    async registrar(config) {
      const link = await connectService(config.server.serviceSocket);
      const viaService = link &&
        await serviceRegistrar(link, () => logger("reverse", "udp"), writeStderrLine);
      if (viaService) return viaService;
      const balancer = createBalancer(
        openSharedJson(
          `${config.server.stateDirectory}/${BALANCER_SUBDIRECTORY}`,
          "balancer",
          (path, error) =>
            log.warn("Ignoring corrupt balancer state {path}: {error}", {
              path,
              error: error.message,
            }),
        ),
        Date.now,
      );
      const udp = sudoDnatCall({
        binary: self,
        log: logger("reverse", "udp"),
        tellClient: writeStderrLine,
      });
      return fallbackRegistrar(crypto.randomUUID(), balancerPicker(balancer), udp);
    },
    probe: realProbe,
    pty: Deno.stdin.isTerminal(),
  }),
  isExecutable,
  replaceProcess,
};
