/**
 * A reverse session decided inside the DNAT service: the same decisions as
 * session.ts, with the service's config, the connection the kernel says the
 * session's sshd holds (never SSH_CONNECTION), the account the kernel says
 * connected (USER must name it), and the service's own registrar. The
 * session process sent only its environment's few inputs, and gets back
 * what to exec or how to exit, with its lines for the client.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import type { Fs } from "../config/fs.ts";
import { errorText, UserError } from "../errors.ts";
import { clientText } from "../log/format.ts";
import { SSH_PATH } from "../ssh/handoff.ts";
import type { DecidingSession } from "../dnat/service_sessions.ts";
import type { DecideReply, DecideRequest, FileAnswer, FileIdentity } from "./decide_protocol.ts";
import { sessionInputsOf } from "./inputs.ts";
import { serviceRegistrar } from "./registrar.ts";
import { decideSession, EXIT_PROXY_ERROR } from "./session.ts";
import type { Prober } from "./upstream.ts";

/** What deciding in the service needs besides the session. */
export interface ServiceDecideDeps {
  /** The service's config: the last good one. */
  readonly config: Config;
  /** Its file's identity now; undefined when it cannot be read. */
  configFile(): Promise<FileIdentity | undefined>;
  readonly probe: Prober;
  /** The uid an account name has (NSS); undefined when there is no such account. */
  userId(name: string): Promise<number | undefined>;
  isExecutable(path: string): boolean;
  /** The sessions' logger (category reverse). */
  readonly log: Logger;
}

/** A file the session could not read, as Deno would have thrown it in the session itself. */
function readError(answer: Extract<FileAnswer, { error: string }>): Error {
  if (answer.error === "not_found") return new Deno.errors.NotFound(answer.message);
  if (answer.error === "denied") return new Deno.errors.PermissionDenied(answer.message);
  // The session's own words go into root's log: never a planted field.
  return new Error(clientText(answer.message));
}

/**
 * The files a decision reads (the keyfile and known_hosts), read by the session itself as a
 * session deciding in its own process would: the service's unit may not read users' homes, root
 * never opens a path the proxy group could plant a FIFO at, and what the user may read is what ssh
 * will. A session that lies about them only misleads its own decision: ssh, not the probe, is what
 * logs in, with the real files.
 */
function sessionFs(session: DecidingSession): Fs {
  const answers = new Map<string, Promise<FileAnswer>>();
  const asSession = async (path: string) => {
    if (!answers.has(path)) answers.set(path, session.read(path));
    const answer = await answers.get(path)!;
    if ("error" in answer) throw readError(answer);
    return answer;
  };
  return {
    readTextFile: async (path) => (await asSession(path)).text,
    stat: async (path) => {
      const { uid, mode } = await asSession(path);
      return { uid, mode };
    },
  };
}

/** Decides one session for the service's socket. */
export async function decideInService(
  request: DecideRequest,
  session: DecidingSession,
  deps: ServiceDecideDeps,
): Promise<DecideReply> {
  const own = await deps.configFile();
  if (!own || own.dev !== request.config.dev || own.ino !== request.config.ino) {
    return { op: "fallback", reason: "the session was given another config file" };
  }
  const tell: string[] = [];
  const exit = (exitCode: number): DecideReply => ({ op: "decided", tell, exit: exitCode });
  const refuse = (clientLine: string, logLine: string, fields: Record<string, unknown>) => {
    tell.push(`xferproxy: ${clientLine}`);
    deps.log.error(logLine, { ...fields, pid: session.peer.pid, exit: EXIT_PROXY_ERROR });
    return exit(EXIT_PROXY_ERROR);
  };
  const env = (name: string) => request.env[name as keyof DecideRequest["env"]];
  const { client, proxy } = session.identity;
  let inputs;
  try {
    inputs = sessionInputsOf(
      { clientIp: client.ip, clientPort: client.port, proxyIp: proxy.ip, proxyPort: proxy.port },
      env,
    );
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return refuse(error.message, "Session refused: {error}", { error: error.message });
  }
  const uid = await deps.userId(inputs.user);
  if (uid !== session.peer.uid) {
    return refuse(
      "the session's USER is not its account",
      "Session refused: USER {user} is uid {named}, the session's process runs as uid {uid}",
      { user: inputs.user, named: uid ?? "none", uid: session.peer.uid },
    );
  }
  const registrar = await serviceRegistrar(session.link, () => deps.log, (l) => tell.push(l));
  if (!registrar) {
    return refuse("internal error; see the proxy log", "The DNAT service refused its own", {});
  }
  try {
    const outcome = await decideSession(inputs, deps.config, {
      fs: sessionFs(session),
      pid: session.peer.pid,
      uid: session.peer.uid,
      registrar: () => Promise.resolve(registrar),
      probe: deps.probe,
      pty: request.pty,
      env,
      tellClient: (line) => tell.push(line),
      log: deps.log,
      decidedBy: "service",
    });
    if (outcome.kind === "exit") return exit(outcome.exitCode);
    if (!deps.isExecutable(SSH_PATH)) {
      return refuse(
        "internal error; see the proxy log",
        "Cannot hand over: {path} is missing; install openssh-client",
        { path: SSH_PATH },
      );
    }
    return { op: "decided", tell, handoff: outcome.handoff };
  } catch (error) {
    return refuse("internal error; see the proxy log", "Internal error: {error}", {
      error: error instanceof Error ? error.stack ?? error.message : errorText(error),
    });
  }
}
