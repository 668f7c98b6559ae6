/**
 * The drain mark: while it is set, the DNAT service refuses new reverse
 * sessions (running ones finish) and `/healthz` says so, so a load balancer
 * sends new clients to other nodes. It lives in a file of root's, so it
 * survives a restart of the service or the host.
 * @module
 */

import { MAX_DRAIN_REASON } from "./contract.ts";

/** Since when the node is drained, and the administrator's note. */
export interface DrainMark {
  /** ms since the epoch. */
  readonly since: number;
  readonly reason?: string;
}

/** The file's name in `<state_directory>/dnat`. */
export const DRAIN_FILE = "drain.json";

/** The file's text. */
export function formatDrainMark(mark: DrainMark): string {
  return JSON.stringify(mark) + "\n";
}

/**
 * The mark in the file's text. A file that is there but unreadable still
 * drains (the administrator asked for it): since `fallbackSince`.
 */
export function parseDrainMark(text: string, fallbackSince: number): DrainMark {
  try {
    const v = JSON.parse(text);
    if (typeof v === "object" && v !== null && Number.isSafeInteger(v.since) && v.since >= 0) {
      return typeof v.reason === "string"
        ? { since: v.since, reason: v.reason.slice(0, MAX_DRAIN_REASON) }
        : { since: v.since };
    }
  } catch {
    // Falls through: a damaged mark still drains.
  }
  return { since: fallbackSince };
}

/** The mark's file in the service's root-only directory (platform/drain_file.ts). */
export interface DrainFile {
  /** The mark, or undefined when the node is not drained. */
  read(dir: string): Promise<DrainMark | undefined>;
  write(dir: string, mark: DrainMark): Promise<void>;
  /** Removes the mark; false when there was none. */
  clear(dir: string): Promise<boolean>;
}

/** How long the service takes at most to see a new mark (it looks every second). */
export const DRAIN_SEEN_WITHIN_S = 1;

/** What `dnat drain` says. */
export function drainedText(mark: DrainMark, running: number, already: boolean): string {
  const since = new Date(mark.since).toISOString();
  return [
    already
      ? `already drained since ${since}${
        mark.reason ? ` (${mark.reason}; that reason is kept)` : ""
      }`
      : `drained since ${since}`,
    `: new reverse sessions are refused within ${DRAIN_SEEN_WITHIN_S} s and /healthz answers 503;`,
    ` ${running} running session${running === 1 ? "" : "s"} go on.`,
    " xferproxy dnat undrain takes sessions again.\n",
  ].join("");
}
