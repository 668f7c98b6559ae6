/**
 * What sshd tells a ForceCommand about the session, parsed and checked.
 * Pure: the environment comes in as a lookup function.
 * @module
 */

import { UserError } from "../errors.ts";
import { EXIT } from "../cli/exit.ts";
import { type DomainEndpoint, parseDomainEndpoint, parsePort } from "../net/endpoint.ts";
import { type IpAddress, parseIp } from "../net/ip.ts";
import { userNameProblem } from "../config/values.ts";
import type { ChannelRequest } from "../ssh/policy.ts";

/** One reverse session's facts. */
export interface SessionInputs {
  readonly user: string;
  readonly clientIp: IpAddress;
  readonly clientPort: number;
  /** The proxy address and port the client connected to. */
  readonly proxyIp: IpAddress;
  readonly proxyPort: number;
  /** The name the client dialled, from XFERPROXY_HOST, when given and valid. */
  readonly dialled?: DomainEndpoint;
  /** XFERPROXY_HOST was set but is not `name[:port]`: ignored, worth a log line. */
  readonly badDialled?: string;
  readonly request: ChannelRequest;
}

/** Bad inputs from sshd: the session cannot go on. */
export class SessionInputError extends UserError {
  constructor(message: string) {
    super(message, { exitCode: EXIT.proxyError });
  }
}

/** Commands sshd passes for the sftp subsystem (its `Subsystem sftp …` line). */
const SFTP_SERVERS = /^(internal-sftp|(\/\S+\/)?sftp-server)(\s.*)?$/;

/** Maps SSH_ORIGINAL_COMMAND to what the client asked for. */
export function requestFromCommand(original: string | undefined): ChannelRequest {
  if (original === undefined || original.trim() === "") return { kind: "shell" };
  if (SFTP_SERVERS.test(original.trim())) return { kind: "subsystem", name: "sftp" };
  return { kind: "exec", command: original };
}

/**
 * Reads SSH_CONNECTION, SSH_ORIGINAL_COMMAND, USER (or LOGNAME) and XFERPROXY_HOST.
 * @throws {SessionInputError} when sshd's variables are missing or malformed
 */
export function readSessionInputs(
  environment: (name: string) => string | undefined,
): SessionInputs {
  // A variable the environment cannot give (one that is not UTF-8) is the client's input too.
  const env = (name: string) => {
    try {
      return environment(name);
    } catch (error) {
      if (!(error instanceof UserError) || error instanceof SessionInputError) throw error;
      throw new SessionInputError(error.message);
    }
  };
  const connection = env("SSH_CONNECTION");
  if (!connection) {
    throw new SessionInputError("SSH_CONNECTION is not set: xferproxy reverse must be run by sshd");
  }
  const [clientIpText = "", clientPortText = "", proxyIpText = "", proxyPortText = "", extra] =
    connection.split(" ");
  const clientIp = parseIp(clientIpText);
  const proxyIp = parseIp(proxyIpText);
  const clientPort = parsePort(clientPortText);
  const proxyPort = parsePort(proxyPortText);
  if (
    !clientIp || !proxyIp || clientPort === undefined || proxyPort === undefined ||
    extra !== undefined
  ) {
    throw new SessionInputError(`SSH_CONNECTION is malformed: "${connection}"`);
  }
  return sessionInputsOf({ clientIp, clientPort, proxyIp, proxyPort }, env);
}

/** The client's and the proxy's end of the session's SSH connection. */
export type SshConnection = Pick<
  SessionInputs,
  "clientIp" | "clientPort" | "proxyIp" | "proxyPort"
>;

/**
 * The inputs of a session whose connection is known (from SSH_CONNECTION, or from the kernel
 * when the DNAT service decides): USER (or LOGNAME), XFERPROXY_HOST and SSH_ORIGINAL_COMMAND.
 * @throws {SessionInputError} when the user name is malformed
 */
export function sessionInputsOf(
  connection: SshConnection,
  env: (name: string) => string | undefined,
): SessionInputs {
  const user = env("USER") ?? env("LOGNAME") ?? "";
  const problem = userNameProblem(user);
  if (problem) throw new SessionInputError(`Invalid user name ${JSON.stringify(user)}: ${problem}`);
  const host = env("XFERPROXY_HOST");
  const dialled = host ? parseDomainEndpoint(host) : undefined;
  return {
    user,
    ...connection,
    ...(dialled && typeof dialled !== "string" ? { dialled } : {}),
    ...(typeof dialled === "string" ? { badDialled: host as string } : {}),
    request: requestFromCommand(env("SSH_ORIGINAL_COMMAND")),
  };
}
