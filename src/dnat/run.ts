/**
 * `xferproxy dnat …` as a process: `add` (a session's privileged call
 * through sudo), `del`, `list`, `reap`, `drain`, `undrain`, and `serve` (the DNAT service,
 * wired in serve.ts).
 * Through sudo it trusts nothing the caller chose: only the system config,
 * read through the platform's trusted reader, and only the caller's own
 * sessions. Failures are logged here and thrown as `UserError`s for
 * main.ts to print; `add` also answers them as a JSON event.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { RunContext } from "../cli/command.ts";
import { EXIT } from "../cli/exit.ts";
import { type Config, loadConfig } from "../config/mod.ts";
import { configSource } from "../config/source.ts";
import type { Fs } from "../config/fs.ts";
import { logIgnored, ServiceStartError, UserError } from "../errors.ts";
import { logger, type OpenLogs, withLogging } from "../log/mod.ts";
import { NotAuthorizedError } from "./errors.ts";
import { refusedThroughSudo } from "./actions.ts";
import type { DnatArgs } from "./contract.ts";
import { type AddRequest, formatAddReply, sudoCallerUid } from "./contract.ts";
import { type AdministerDeps, deleteSession, listSessions, reapSessions } from "./administer.ts";
import type { Caller, Claimant, DnatDeps } from "./deps.ts";
import { install } from "./install.ts";
import { identifySession, rootNamedOwner, sudoCaller } from "./owner.ts";
import type { ProcReader } from "./procfs.ts";
import { serveDnat, type ServePlatform } from "./serve.ts";
import { formatPorts } from "./types.ts";
import { drainedText, type DrainMark } from "./drain.ts";

/** What the dnat actions need from the system (platform/dnat_platform.ts implements it). */
export interface DnatPlatform extends ServePlatform {
  /** Reads only root-owned files nobody else may change, not through links (under sudo). */
  readonly trustedFs: Fs;
  /** Log outputs; the service's also go to stderr (the journal). */
  openLogs(service: boolean): OpenLogs;
  /** Makes `<state_directory>/dnat` root-only if missing, checks it, returns its path. */
  prepareDirectory(stateDirectory: string): Promise<string>;
  /** Everything the DNAT core touches; `service`: one long-lived netfilter context. */
  dnatDeps(config: Config, dir: string, log: Logger, service: boolean): Promise<DnatDeps>;
  /** /proc, as the one-shot calls read it (programs: they hold no FFI). */
  proc(): ProcReader;
  /** This process's pid. */
  readonly pid: number;
  /**
   * Ends this process with `line` on stderr and status 1 if it still runs after `ms`: every
   * one-shot privileged call is bounded, whatever it waits on (a lock, a stuck tool). Returns
   * the disarm.
   */
  deadline(ms: number, line: string): () => void;
}

/** How long a one-shot dnat call (add, del, list, reap, drain, undrain) may take in all. */
export const CALL_LIMIT_MS = 120_000;

/** Runs `xferproxy dnat …`; returns the exit status. */
export async function runDnat(
  args: DnatArgs,
  platform: DnatPlatform,
  context: RunContext,
): Promise<number> {
  const { request } = args;
  const callerUid = sudoCallerUid(context.env);
  const disarm = request.action === "serve" ? () => {} : platform.deadline(
    CALL_LIMIT_MS,
    `xferproxy: dnat ${request.action} did not finish within ${
      CALL_LIMIT_MS / 1000
    } s; stopped (xferproxy check system says what is wrong)`,
  );
  try {
    const source = configSource(
      callerUid === undefined ? "administrator" : "privileged",
      args.configPath,
      context.env,
    );
    const { config } = await loadConfig(
      source.path,
      source.system ? platform.trustedFs : platform.fs,
    );
    const open = platform.openLogs(request.action === "serve");
    await withLogging(config.server.rproxy, open, async () => {
      const log = logger("dnat");
      try {
        await perform(args, config, callerUid, platform, context, log);
      } catch (error) {
        // The service's failure is logged once, as Aspera Proxy's line, by withLogging.
        if (request.action === "serve" && !(error instanceof NotAuthorizedError)) {
          throw ServiceStartError.from(error);
        }
        if (error instanceof UserError) {
          log.error("dnat {action} failed: {error}", {
            action: request.action,
            error: error.message,
          });
        }
        throw error;
      }
    });
    return EXIT.ok;
  } catch (error) {
    if (request.action === "add" && error instanceof UserError) {
      const event = error instanceof NotAuthorizedError ? "refused" : "failed";
      context.output.out(formatAddReply({ event, reason: error.message }));
    }
    throw error;
  } finally {
    disarm();
  }
}

async function perform(
  { request }: DnatArgs,
  config: Config,
  callerUid: number | undefined,
  platform: DnatPlatform,
  context: RunContext,
  log: Logger,
): Promise<void> {
  const refusal = callerUid === undefined
    ? undefined
    : refusedThroughSudo(request.action, callerUid);
  if (refusal) throw new NotAuthorizedError(refusal);
  const caller: Caller = callerUid === undefined ? {} : { uid: callerUid };
  const dir = await platform.prepareDirectory(config.server.stateDirectory);
  const service = request.action === "serve";
  const deps: AdministerDeps = {
    ...(await platform.dnatDeps(config, dir, log, service)),
    print: (text) => context.output.out(text),
  };
  switch (request.action) {
    case "add": {
      // Through sudo too: the service being down does not undo an administrator's drain.
      if (await platform.drain.read(dir)) {
        throw new NotAuthorizedError("this node is draining: it takes no new sessions");
      }
      const id = platform.newId();
      const claimant = await claimantOf(request.request, caller, deps, platform);
      const entry = await install(deps, {
        id,
        claimant,
        target: request.request,
        ...(context.env("SUDO_USER") ? { user: context.env("SUDO_USER") as string } : {}),
      });
      const s = entry.forwarding.session;
      context.output.out(formatAddReply({
        event: "installed",
        session: id,
        proxy: formatPorts(s.proxy, s.proxyPort, s.portCount),
        server: formatPorts(s.server, s.serverPort, s.portCount),
        filtering: entry.forwarding.filtering,
      }));
      // Answered before its purge of stale flows, which holds the lock: done before this exits.
      // Installed is installed: a lock that fails now is only logged.
      await deps.store.lock(() => Promise.resolve()).catch(
        logIgnored(log, "Cannot wait for the purge of stale flows"),
      );
      return;
    }
    case "del":
      return await deleteSession(deps, request.id, caller);
    case "list":
      return await listSessions(deps, caller, request.json);
    case "reap": {
      const n = await reapSessions(deps, caller, request.all);
      context.output.out(`reaped ${n} session${n === 1 ? "" : "s"}\n`);
      return;
    }
    case "serve":
      return await serveDnat(deps, config, dir, platform, log);
    case "drain":
    case "undrain": {
      const running = (await deps.store.read()).entries.filter((e) => e.rule > 0).length;
      const before = await platform.drain.read(dir);
      if (request.action === "undrain") {
        await platform.drain.clear(dir);
        if (before) log.warn("Undrained: new reverse sessions are taken again");
        context.output.out(
          before ? "undrained: new sessions are taken again\n" : "not drained: nothing to do\n",
        );
        return;
      }
      const mark: DrainMark = before ??
        { since: deps.now(), ...(request.reason !== undefined ? { reason: request.reason } : {}) };
      if (!before) {
        await platform.drain.write(dir, mark);
        log.warn("Drained: new reverse sessions are refused, {running} running go on", {
          running,
          ...(mark.reason ? { reason: mark.reason } : {}),
        });
      }
      context.output.out(drainedText(mark, running, before !== undefined));
      return;
    }
  }
}

/**
 * Who a `dnat add` is for: through sudo, the session that ran sudo and the
 * sshd connection it descends from; as root, the owner and addresses named.
 * @throws {NotAuthorizedError}
 */
async function claimantOf(
  request: AddRequest,
  caller: Caller,
  deps: DnatDeps,
  platform: DnatPlatform,
): Promise<Claimant> {
  if (caller.uid === undefined) {
    if (!request.named) {
      throw new NotAuthorizedError(
        "as root, name the session with --owner, --client and --proxy (sessions call through sudo or the service)",
      );
    }
    const owner = await rootNamedOwner(deps.processes, request.named.owner);
    return { owner, uid: 0, client: request.named.client, proxy: request.named.proxy };
  }
  if (request.named) {
    throw new NotAuthorizedError("--owner, --client and --proxy are for root only");
  }
  const proc = platform.proc();
  const session = await sudoCaller(proc, platform.pid, caller.uid);
  const identity = await identifySession(proc, session.pid);
  return {
    owner: identity.owner,
    uid: identity.uid,
    client: identity.client.ip,
    proxy: identity.proxy.ip,
    ssh: { client: identity.client, proxy: identity.proxy },
  };
}
