/**
 * Logging in to an internal server and out again, in-process with ssh2, to
 * tell an administrator whether a rule's key, account and pinned host key
 * work (`xferproxy check upstreams`). No bytes are bridged here: sessions
 * are carried by OpenSSH's ssh.
 * @module
 */

import ssh2 from "ssh2";
import { connect as tcpConnect } from "node:net";
import type { Buffer } from "node:buffer";
import { fingerprint, type HostKeyVerdict } from "./known_hosts.ts";

/** Where and how to log in. */
export interface LoginSpec {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** The private key text. */
  readonly privateKey: string;
  readonly timeoutMs: number;
  /** Host key algorithms known_hosts pins for the server; empty: any (to show what it presents). */
  readonly hostKeyAlgorithms: readonly string[];
  readonly verifyHostKey: (blob: Uint8Array) => Promise<HostKeyVerdict>;
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

/** Logs in and out; never throws. */
export function tryLogin(spec: LoginSpec): Promise<LoginOutcome> {
  const label = `${spec.host.includes(":") ? `[${spec.host}]` : spec.host}:${spec.port}`;
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let verdict: HostKeyVerdict | undefined;
    let presented = "";
    let settled = false;
    const done = (outcome: LoginOutcome) => {
      if (settled) return;
      settled = true;
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
      clearTimeout(timer);
      done({ kind: "ok", fingerprint: presented });
    });
    client.on("error", (error: Error & { level?: string }) => {
      clearTimeout(timer);
      if (verdict && !verdict.ok) {
        return done({
          kind: "hostkey",
          reason: verdict.reason,
          presented: verdict.presented,
          expected: verdict.expected,
        });
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
        ...(spec.hostKeyAlgorithms.length
          ? {
            algorithms: {
              serverHostKey: [...spec.hostKeyAlgorithms] as ssh2.ServerHostKeyAlgorithm[],
            },
          }
          : {}),
        hostVerifier: (key: Buffer, answer: (ok: boolean) => void) => {
          const blob = new Uint8Array(key);
          Promise.all([fingerprint(blob), spec.verifyHostKey(blob)]).then(([print, result]) => {
            presented = print;
            verdict = result;
            answer(result.ok);
          }, () => answer(false));
        },
      });
    });
  });
}
