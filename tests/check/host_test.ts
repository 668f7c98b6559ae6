import { assertEquals } from "../_assert.ts";
import { CHECK_PROGRAMS, queryArgv, type ReadOnlyQuery } from "../../src/check/host.ts";

// One example of every kind: TypeScript refuses this object when a kind is added without one.
const EXAMPLES: { [K in ReadOnlyQuery["kind"]]: Array<Extract<ReadOnlyQuery, { kind: K }>> } = {
  version: [
    { kind: "version", program: "iptables" },
    { kind: "version", program: "nft" },
    { kind: "version", program: "conntrack" },
  ],
  ip_forward: [{ kind: "ip_forward" }],
  iptables_save: [{ kind: "iptables_save" }],
  proc_stat: [{ kind: "proc_stat", pids: [1, 42] }, { kind: "proc_stat", pids: [] }, {
    kind: "proc_stat",
    pids: [-1, 1.5, NaN],
  }],
};

/** What reads and never writes, program by program. */
const READ_ONLY: Record<string, (args: readonly string[]) => boolean> = {
  iptables: (a) => a.length === 1 && a[0] === "--version",
  nft: (a) => a.length === 1 && a[0] === "--version",
  conntrack: (a) => a.length === 1 && a[0] === "--version",
  "iptables-save": (a) => a.length === 0,
  // -n prints values; -w or NAME=VALUE would write.
  sysctl: (a) => a[0] === "-n" && a.slice(1).every((x) => /^[a-z0-9_.]+$/.test(x)),
  // head only reads; every path is a /proc stat file.
  head: (a) =>
    a[0] === "-v" && a[1] === "-c" && /^\d+$/.test(a[2] ?? "") && a[3] === "--" &&
    a.slice(4).every((p) => /^\/proc\/(\d+\/)?stat$/.test(p)),
};

Deno.test("check runs only fixed command lines that read and never change the system", async (t) => {
  const used = new Set<string>();
  for (const query of Object.values(EXAMPLES).flat()) {
    const [program, ...args] = queryArgv(query);
    await t.step(`${program} ${args.join(" ")}`, () => {
      assertEquals(CHECK_PROGRAMS.includes(program!), true);
      assertEquals(READ_ONLY[program!]?.(args), true);
    });
    used.add(program!);
  }
  // The permission set holds no program the queries do not use.
  assertEquals([...used].sort(), [...CHECK_PROGRAMS].sort());
});

Deno.test("queryArgv() keeps only real pids in the /proc stat list", () => {
  assertEquals(queryArgv({ kind: "proc_stat", pids: [12, -1, 0, 1.5, 7] }), [
    "head",
    "-v",
    "-c",
    "16777216",
    "--",
    "/proc/stat",
    "/proc/12/stat",
    "/proc/7/stat",
  ]);
});
