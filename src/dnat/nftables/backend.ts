/**
 * The nftables backend: our own `ip`/`ip6` table, sessions as timed map
 * elements, every change one transaction. The kernel is never read to make
 * a change (the caller knows the sessions that remain), so a change costs
 * the same with one session or a thousand; `reconcile` reads it.
 * @module
 */

import type { CommandRunner } from "../../process/runner.ts";
import { NetfilterError } from "../errors.ts";
import {
  addLine,
  deleteLines,
  elementId,
  isCurrent,
  type NatElement,
  natElements,
  neededElements,
  nftFamily,
  parseElementIds,
  refreshLines,
  tableText,
  upgradeText,
} from "./plan.ts";
import type { BackendCapabilities, DnatBackend, DnatSession, NftRunner } from "../types.ts";
import { LIBNFTABLES_PATHS } from "../../process/libraries.ts";

/**
 * Elements carry no owner (they are shared by the sessions that need them),
 * so the kernel cannot say whose they are; they expire unless refreshed.
 * TCP too: forward sessions' SSH port.
 */
export const NFTABLES_CAPABILITIES: BackendCapabilities = {
  tcp: true,
  tagging: false,
  listing: false,
  expiring: true,
};

/** Runs each transaction as `nft [-j] -f -`: where libnftables is not at a known path. */
export function nftCommandRunner(runner: CommandRunner): NftRunner {
  return {
    via: "the nft command",
    async run(commands, options = {}) {
      // With -j, nft reads -f input as JSON: a JSON listing is one command given as argv.
      const result = options.json
        ? await runner.run("nft", ["-j", ...commands.split(" ")])
        : await runner.run("nft", ["-f", "-"], { stdin: commands + "\n" });
      if (result.code !== 0) {
        // nft names "/dev/stdin:LINE:COLUMNS" first: meaningless to whoever reads the error.
        const message = result.stderr.trim().replace(/^\/dev\/stdin:[0-9:-]+ /, "");
        throw new NetfilterError(`nftables refused the change: ${message}`);
      }
      return result.stdout;
    },
  };
}

/** Creates the nftables backend over libnftables or the nft command. */
export function nftablesBackend(nft: NftRunner): DnatBackend {
  const apply = async (lines: readonly string[]) => {
    if (lines.length) await nft.run(lines.join("\n"));
  };
  // `list tables` rather than `list table`: a failed command costs nftables an abort (~20 ms).
  const hasTable = async (family: 4 | 6) =>
    (await nft.run("list tables")).split("\n").includes(`table ${nftFamily(family)} xferproxy`);
  // A table an earlier version made lacks TCP or marks flows in forward: looked at once per
  // family and process, converted in one transaction.
  const current = new Set<4 | 6>();
  /**
   * Makes our table, or brings its chains' rules up to date; true when the table was there but
   * its prerouting rules were not (an earlier version's, or flushed: `nft flush chain … prerouting`
   * keeps every map element while nothing reaches them).
   */
  const makeReady = async (family: 4 | 6, look: boolean): Promise<boolean> => {
    let unhooked = false;
    if (!(await hasTable(family))) {
      await nft.run(tableText(family));
    } else if (look || !current.has(family)) {
      const chain = await nft.run(`list chain ${nftFamily(family)} xferproxy prerouting`);
      unhooked = !isCurrent(chain);
      if (unhooked) await nft.run(upgradeText(family));
    }
    current.add(family);
    return unhooked;
  };
  const ensureReady = async (family: 4 | 6) => void await makeReady(family, false);
  /** Element ids the kernel holds in our table: one listing (a call is a process without FFI). */
  const present = async (family: 4 | 6): Promise<Set<string>> =>
    parseElementIds(await nft.run(`list table ${nftFamily(family)} xferproxy`, { json: true }));
  const families = [4, 6] as const;
  const of = (sessions: readonly DnatSession[], family: 4 | 6) =>
    sessions.filter((s) => s.client.family === family);
  /** Lines deleting the elements of `gone` that none of `staying` needs. */
  const releaseLines = (
    family: 4 | 6,
    gone: readonly DnatSession[],
    staying: readonly DnatSession[],
  ) => {
    // Every element's key starts with the client address: only its other sessions can share one.
    const clients = new Set(gone.map((s) => s.client.text));
    const kept = neededElements(staying.filter((s) => clients.has(s.client.text)));
    return [...neededElements(gone).values()]
      .filter((e) => !kept.has(elementId(e)))
      .flatMap((e) => deleteLines(family, e));
  };
  return {
    name: "nftables",
    via: nft.via,
    capabilities: NFTABLES_CAPABILITIES,
    tool: "nft",
    libraries: LIBNFTABLES_PATHS,
    ensureReady,
    async add(sessions) {
      for (const family of families) {
        await apply(of(sessions, family).flatMap(natElements).map((e) => addLine(family, e)));
      }
    },
    async remove(sessions, remaining) {
      for (const family of families) {
        const gone = of(sessions, family);
        // No table (a flush took it): nothing of theirs is left, and deleting would fail.
        if (gone.length === 0 || !(await hasTable(family))) continue;
        await apply(releaseLines(family, gone, of(remaining, family)));
      }
    },
    async replace(before, after, remaining) {
      const family = before.client.family;
      await apply([
        ...releaseLines(family, [before], [after, ...of(remaining, family)]),
        ...natElements(after).map((e) => addLine(family, e)),
      ]);
    },
    async reconcile(wanted) {
      const repaired = new Set<string>();
      const rehooked: string[] = [];
      for (const family of families) {
        const mine = of(wanted, family);
        if (mine.length === 0 && !(await hasTable(family))) continue;
        // Looked at every round: a flushed chain leaves the elements in place, out of reach.
        if (await makeReady(family, true)) rehooked.push(...mine.map((s) => s.id));
        const have = await present(family);
        const needed = neededElements(mine);
        const lines: string[] = [];
        for (const session of mine) {
          const absent = natElements(session).filter((e) => !have.has(elementId(e)));
          if (absent.length) repaired.add(session.id);
        }
        for (const [id, e] of needed) if (!have.has(id)) lines.push(addLine(family, e));
        // Elements no wanted session needs: left by a crash between a change and its record.
        for (const id of have) {
          if (needed.has(id)) continue;
          const [set, key] = id.split("|") as [NatElement["set"], string];
          lines.push(`delete element ${nftFamily(family)} xferproxy ${set} { ${key} }`);
        }
        await apply(lines);
      }
      return { repaired: [...repaired], converted: [], ...(rehooked.length ? { rehooked } : {}) };
    },
    list: () => Promise.resolve([]),
    removeTagged: () => Promise.resolve([]),
    async refresh(sessions) {
      for (const family of families) {
        await apply(
          [...neededElements(of(sessions, family)).values()].flatMap((e) =>
            refreshLines(family, e)
          ),
        );
      }
    },
    async teardown() {
      for (const family of families) {
        if (await hasTable(family)) await nft.run(`delete table ${nftFamily(family)} xferproxy`);
      }
    },
  };
}
