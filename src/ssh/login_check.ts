/**
 * Logging in to an internal server and out again, in-process with ssh2, to
 * tell an administrator whether a rule's key, account and pinned host key
 * work (`xferproxy check upstreams`). No bytes are bridged here: sessions
 * are carried by OpenSSH's ssh.
 * @module
 */

import ssh2 from "ssh2";
import { connect as tcpConnect } from "node:net";
import {
  describeJudgement,
  fingerprint,
  type HostKeyJudgement,
  judgeHostKey,
  pinnedAlgorithms,
  type PinnedHostKeys,
} from "./known_hosts.ts";

/** Where and how to log in. */
export interface LoginSpec {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** The private key text. */
  readonly privateKey: string;
  readonly timeoutMs: number;
  /** What known_hosts pins for the server, resolved before connecting. */
  readonly pinned: PinnedHostKeys;
}

/** What happened. */
export type LoginOutcome =
  | { readonly kind: "ok"; readonly fingerprint: string }
  | { readonly kind: "unreachable" | "timeout" | "protocol"; readonly message: string }
  | {
    readonly kind: "hostkey";
    readonly reason: "unknown" | "changed" | "revoked";
    readonly presented: string;
    readonly expected: readonly string[];
  }
  | { readonly kind: "refused"; readonly message: string };

/**
 * ssh2's host key callback, answered before it returns. ssh2 1.17 never
 * sends its own NEWKEYS when the server's NEWKEYS and EXT_INFO arrive
 * before the answer, and the login stalls until the timeout: so the
 * judgement must not wait for anything (no WebCrypto, no I/O).
 */
export function hostKeyCallback(
  pinned: PinnedHostKeys,
  record: (blob: Uint8Array, judgement: HostKeyJudgement) => void,
): (key: Uint8Array, answer: (ok: boolean) => void) => void {
  return (key, answer) => {
    const blob = new Uint8Array(key);
    const judgement = judgeHostKey(pinned, blob);
    record(blob, judgement);
    answer(judgement === "ok");
  };
}

/** Logs in and out; never throws. */
export function tryLogin(spec: LoginSpec): Promise<LoginOutcome> {
  const label = `${spec.host.includes(":") ? `[${spec.host}]` : spec.host}:${spec.port}`;
  const algorithms = pinnedAlgorithms(spec.pinned.forHost);
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let judged: { blob: Uint8Array; judgement: HostKeyJudgement } | undefined;
    let settled = false;
    const done = (outcome: LoginOutcome | Promise<LoginOutcome>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      socket.destroy();
      resolve(outcome);
    };
    // Our own socket: ssh2 never turns Nagle off, which stalls its small packets.
    const socket = tcpConnect({ host: spec.host, port: spec.port });
    socket.setNoDelay(true);
    socket.on("error", (error: Error & { code?: string }) =>
      done({
        kind: "unreachable",
        message: `Cannot connect to ${label}: ${error.code ?? error.message}`,
      }));
    const timer = setTimeout(
      () =>
        done({ kind: "timeout", message: `No answer from ${label} within ${spec.timeoutMs} ms` }),
      spec.timeoutMs,
    );
    client.on("ready", () => {
      const blob = judged?.blob ?? new Uint8Array(0);
      done(fingerprint(blob).then((print) => ({ kind: "ok", fingerprint: print })));
    });
    client.on("error", (error: Error & { level?: string }) => {
      if (judged && judged.judgement !== "ok") {
        const { blob, judgement } = judged;
        return done(
          describeJudgement(spec.pinned, blob, judgement).then((verdict) =>
            verdict.ok ? { kind: "protocol", message: `SSH with ${label} failed` } : {
              kind: "hostkey",
              reason: verdict.reason,
              presented: verdict.presented,
              expected: verdict.expected,
            }
          ),
        );
      }
      if (error.level === "client-authentication") {
        return done({
          kind: "refused",
          message: `${label} refused the key for user "${spec.username}"`,
        });
      }
      done({ kind: "protocol", message: `SSH with ${label} failed: ${error.message}` });
    });
    socket.on("connect", () => {
      client.connect({
        sock: socket,
        username: spec.username,
        privateKey: spec.privateKey,
        readyTimeout: spec.timeoutMs,
        tryKeyboard: false,
        agent: undefined,
        // Without a pinned key the server is asked for any type, to show what it presents.
        ...(algorithms.length
          ? { algorithms: { serverHostKey: algorithms as ssh2.ServerHostKeyAlgorithm[] } }
          : {}),
        hostVerifier: hostKeyCallback(spec.pinned, (blob, judgement) => {
          judged = { blob, judgement };
        }),
      });
    });
  });
}
