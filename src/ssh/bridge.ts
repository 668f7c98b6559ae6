/**
 * The upstream half of the bridge: an ssh2 client logged in to the internal
 * server with the rule's key, after checking its host key against
 * known_hosts. Errors are classified so the session can decide whether to
 * mark the host faulty.
 * @module
 */

import ssh2 from "ssh2";
import type { Buffer } from "node:buffer";
import type { HostKeyVerdict } from "./known_hosts.ts";
import type { ChannelRequest } from "./policy.ts";

/** Why the upstream could not be used. */
export type UpstreamFailure = "unreachable" | "timeout" | "auth" | "hostkey" | "key" | "protocol";

/** A failure to reach or log in to the internal server. */
export class UpstreamError extends Error {
  readonly kind: UpstreamFailure;
  readonly verdict?: HostKeyVerdict;
  constructor(
    kind: UpstreamFailure,
    message: string,
    options: { verdict?: HostKeyVerdict; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "UpstreamError";
    this.kind = kind;
    if (options.verdict) this.verdict = options.verdict;
  }

  /** Unreachable and timed-out hosts are marked faulty and the next one is tried. */
  get marksFaulty(): boolean {
    return this.kind === "unreachable" || this.kind === "timeout";
  }
}

/** Where and how to log in upstream. */
export interface UpstreamSpec {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** The private key text (OpenSSH or PEM). */
  readonly privateKey: string;
  /** Where the key came from, for messages. */
  readonly keyPath: string;
  readonly timeoutSeconds: number;
  /** Host key algorithms to offer: the types known_hosts pins for this host. */
  readonly hostKeyAlgorithms: readonly string[];
  readonly verifyHostKey: (blob: Uint8Array) => HostKeyVerdict;
}

/** A pseudo-terminal to request upstream. */
export interface PtyRequest {
  readonly term: string;
  readonly rows: number;
  readonly cols: number;
}

/** How the upstream command ended, once it has. */
export interface ChannelExit {
  code?: number;
  /** Signal name without "SIG", e.g. "TERM". */
  signal?: string;
}

/** One open upstream channel: ssh2's stream and its exit report. */
export interface UpstreamChannel {
  readonly stream: ssh2.ClientChannel;
  /** Filled in when the exit-status or exit-signal request arrives. */
  readonly exit: ChannelExit;
}

/** A logged-in upstream connection. */
export interface UpstreamConnection {
  /** Opens the channel the client asked for. */
  open(request: ChannelRequest, pty?: PtyRequest): Promise<UpstreamChannel>;
  /** Closes the connection. */
  end(): void;
}

// Pure-JS crypto under Deno: chacha20-poly1305 is the fastest cipher there; AES-GCM/CTR stay as fallbacks.
const CIPHERS = [
  "chacha20-poly1305@openssh.com",
  "aes128-gcm@openssh.com",
  "aes256-gcm@openssh.com",
  "aes128-ctr",
  "aes256-ctr",
] as const;

/**
 * Checks that the key text is a usable, unencrypted private key.
 * @throws {UpstreamError} kind "key"
 */
export function checkPrivateKey(text: string, path: string): void {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) {
    const error = parsed;
    const encrypted = /encrypted|passphrase/i.test(error.message);
    throw new UpstreamError(
      "key",
      encrypted
        ? `Keyfile "${path}" is encrypted: use a key without a passphrase`
        : `Keyfile "${path}" is not a usable private key: ${error.message}`,
    );
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) {
    throw new UpstreamError("key", `Keyfile "${path}" holds no private key`);
  }
}

/** Connects and logs in; rejects with an `UpstreamError`. */
export function connectUpstream(spec: UpstreamSpec): Promise<UpstreamConnection> {
  checkPrivateKey(spec.privateKey, spec.keyPath);
  if (spec.hostKeyAlgorithms.length === 0) {
    return Promise.reject(
      new UpstreamError("hostkey", `No known_hosts entry for ${spec.host}:${spec.port}`, {
        verdict: { ok: false, reason: "unknown", presented: "(not fetched)", expected: [] },
      }),
    );
  }
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let hostKeyVerdict: HostKeyVerdict | undefined;
    let settled = false;
    const fail = (error: UpstreamError) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(error);
    };
    client.on("ready", () => {
      settled = true;
      resolve(wrap(client));
    });
    client.on("error", (error: Error & { level?: string; code?: string }) => {
      if (hostKeyVerdict && !hostKeyVerdict.ok) {
        return fail(
          new UpstreamError(
            "hostkey",
            `Host key of ${spec.host}:${spec.port} is ${hostKeyVerdict.reason}`,
            { verdict: hostKeyVerdict },
          ),
        );
      }
      switch (error.level) {
        case "client-timeout":
          return fail(
            new UpstreamError(
              "timeout",
              `No answer from ${spec.host}:${spec.port} within ${spec.timeoutSeconds} s`,
              { cause: error },
            ),
          );
        case "client-socket":
          return fail(
            new UpstreamError(
              "unreachable",
              `Cannot connect to ${spec.host}:${spec.port}: ${error.code ?? error.message}`,
              { cause: error },
            ),
          );
        case "client-authentication":
          return fail(
            new UpstreamError(
              "auth",
              `${spec.host}:${spec.port} refused the key for user "${spec.username}"`,
              { cause: error },
            ),
          );
        default:
          return fail(
            new UpstreamError(
              "protocol",
              `SSH with ${spec.host}:${spec.port} failed: ${error.message}`,
              { cause: error },
            ),
          );
      }
    });
    client.connect({
      host: spec.host,
      port: spec.port,
      username: spec.username,
      privateKey: spec.privateKey,
      readyTimeout: spec.timeoutSeconds * 1000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      tryKeyboard: false,
      agent: undefined,
      algorithms: {
        cipher: [...CIPHERS] as ssh2.CipherAlgorithm[],
        serverHostKey: [...spec.hostKeyAlgorithms] as ssh2.ServerHostKeyAlgorithm[],
      },
      hostVerifier: (key: Buffer) => {
        hostKeyVerdict = spec.verifyHostKey(new Uint8Array(key));
        return hostKeyVerdict.ok;
      },
    });
  });
}

function wrap(client: ssh2.Client): UpstreamConnection {
  return {
    open(request, pty) {
      return new Promise((resolve, reject) => {
        const done = (error: Error | undefined, stream: ssh2.ClientChannel) => {
          if (error) {
            const message = `The internal server refused the channel: ${error.message}`;
            return reject(new UpstreamError("protocol", message));
          }
          // Listen now: a quick command's exit-status can arrive in the same read as the
          // channel confirmation, before whoever awaits this promise runs.
          const exit: ChannelExit = {};
          stream.on("exit", (code: number | null, signal?: string) => {
            if (typeof code === "number") exit.code = code;
            if (signal) exit.signal = signal.replace(/^SIG/, "");
          });
          resolve({ stream, exit });
        };
        const ptyOptions = pty ? { term: pty.term, rows: pty.rows, cols: pty.cols } : undefined;
        switch (request.kind) {
          case "exec":
            return ptyOptions
              ? client.exec(request.command, { pty: ptyOptions }, done)
              : client.exec(request.command, done);
          case "subsystem":
            return client.subsys(request.name, done);
          case "shell":
            return ptyOptions ? client.shell(ptyOptions, done) : client.shell(false, done);
        }
      });
    },
    end: () => client.end(),
  };
}
