/**
 * sudoers as sudo reads it: logical lines, include rules, aliases, tags, runas,
 * and the last matching rule deciding; the files followed through a fake host.
 */
import { assertEquals } from "../_assert.ts";
import {
  analyzeSudoers,
  includedByDir,
  missReason,
  sudoersLines,
  type SudoersStatement,
  type WantedDnatRule,
} from "../../src/check/sudoers.ts";
import { loadSudoers } from "../../src/check/sudoers_files.ts";
import type { CheckHost } from "../../src/check/host.ts";

const BIN = "/usr/bin/xferproxy";
const WANTED: WantedDnatRule = { executable: BIN, groups: ["xferproxy"] };

/** The statements of texts given as one file each. */
function statements(...texts: string[]): SudoersStatement[] {
  return texts.flatMap((text, i) =>
    sudoersLines(text).flatMap((l) =>
      l.kind === "statement" ? [{ file: `/etc/sudoers.d/f${i}`, text: l.text }] : []
    )
  );
}

/** The grant that gives group xferproxy the helper, or undefined. */
function helperGrant(text: string, wanted: WantedDnatRule = WANTED) {
  return analyzeSudoers(statements(text), wanted).dnat.get("%xferproxy");
}

Deno.test("sudoersLines() joins continuations, drops comments, keeps includes and uids", () => {
  assertEquals(
    sudoersLines(
      [
        "# a comment",
        "#includedir /etc/sudoers.d",
        '@include "/etc/sudo rules"',
        "@includedir sudoers.d  ",
        "%xferproxy ALL=(root) \\",
        "  NOPASSWD: /usr/bin/xferproxy dnat *   # the helper",
        "#1000 ALL=(#0) /bin/true",
        "",
      ].join("\n"),
    ),
    [
      { kind: "include", path: "/etc/sudoers.d", dir: true },
      { kind: "include", path: "/etc/sudo rules", dir: false },
      { kind: "include", path: "sudoers.d", dir: true },
      { kind: "statement", text: "%xferproxy ALL=(root)    NOPASSWD: /usr/bin/xferproxy dnat *" },
      { kind: "statement", text: "#1000 ALL=(#0) /bin/true" },
    ],
  );
});

Deno.test("includedByDir() skips what sudo's includedir skips", () => {
  assertEquals(
    ["xferproxy", "xferproxy.invalid", "xferproxy~", "README", "x.dpkg-old"].map(includedByDir),
    [true, false, false, true, false],
  );
});

Deno.test("the helper rule as the docs give it, and its equivalent forms", async (t) => {
  const ok: Array<[string, string]> = [
    ["the docs' line", `%xferproxy ALL=(root) NOPASSWD: ${BIN} dnat *`],
    ["runas ALL:ALL", `%xferproxy ALL = (ALL:ALL) NOPASSWD: ${BIN}  dnat  *`],
    ["sudo's default runas", `%xferproxy ALL=NOPASSWD: ${BIN} dnat *`],
    ["one of several users", `bob, %xferproxy ALL=(root) NOPASSWD: /bin/true, ${BIN} dnat *`],
    ["a tag carried over", `%xferproxy ALL=(root) NOPASSWD: /bin/true, ${BIN} dnat *`],
    ["a digest", `%xferproxy ALL=(root) NOPASSWD: sha256:abcd ${BIN} dnat *`],
    [
      "aliases",
      `User_Alias PROXY = %xferproxy\nRunas_Alias ROOT = root\nCmnd_Alias HELPER = ${BIN} dnat *\nPROXY ALL=(ROOT) NOPASSWD: HELPER`,
    ],
    ["other tags first", `%xferproxy ALL=(root) NOEXEC: NOPASSWD: SETENV: ${BIN} dnat *`],
  ];
  for (const [name, text] of ok) {
    await t.step(name, () => assertEquals(helperGrant(text)?.command, `${BIN} dnat *`));
  }
});

Deno.test("rules that do not give the proxy group the helper (issue 19, item 13)", async (t) => {
  const refused: Array<[string, string, string]> = [
    [
      "another path",
      `%xferproxy ALL=(root) NOPASSWD: /tmp/x/xferproxy dnat *`,
      `it names /tmp/x/xferproxy, sessions run ${BIN}`,
    ],
    [
      "another group",
      `%users ALL=(root) NOPASSWD: ${BIN} dnat *`,
      "it is for %users, not %xferproxy",
    ],
    [
      "other arguments",
      `%xferproxy ALL=(root) NOPASSWD: ${BIN} dnat list`,
      'its arguments are "dnat list", not "dnat *"',
    ],
    [
      "the invoking user, another group",
      `%xferproxy ALL=(:adm) NOPASSWD: ${BIN} dnat *`,
      "it does not run the command as root",
    ],
    [
      "a password",
      `%xferproxy ALL=(root) ${BIN} dnat *`,
      "it asks for a password",
    ],
    [
      "a later PASSWD",
      `%xferproxy ALL=(root) NOPASSWD: /bin/true, PASSWD: ${BIN} dnat *`,
      "it asks for a password",
    ],
    [
      "a later denial",
      `%xferproxy ALL=(root) NOPASSWD: ${BIN} dnat *\n%xferproxy ALL=(root) !${BIN} dnat *`,
      "it denies the command",
    ],
    [
      "the group excluded",
      `User_Alias NOTPROXY = ALL, !%xferproxy\nNOTPROXY ALL=(root) NOPASSWD: ${BIN} dnat *`,
      "it is for ALL,!%xferproxy, not %xferproxy",
    ],
    [
      "a comment",
      `# %xferproxy ALL=(root) NOPASSWD: ${BIN} dnat *`,
      "",
    ],
  ];
  for (const [name, text, why] of refused) {
    await t.step(name, () => {
      const facts = analyzeSudoers(statements(text), WANTED);
      assertEquals(facts.dnat.get("%xferproxy"), undefined);
      const miss = facts.nearMisses.at(-1);
      assertEquals(miss ? missReason(miss, ["%xferproxy"], BIN) : "", why);
    });
  }
});

Deno.test("a user named by sshd's Match User is covered by a rule for a group of theirs", () => {
  const wanted: WantedDnatRule = {
    executable: BIN,
    groups: [],
    users: new Map([["bear", ["partners"]], ["cub", []]]),
  };
  const facts = analyzeSudoers(
    statements(`%partners ALL=(root) NOPASSWD: ${BIN} dnat *`),
    wanted,
  );
  assertEquals(facts.dnat.get("bear")?.users, ["%partners"]);
  assertEquals(facts.dnat.has("cub"), true);
  assertEquals(facts.dnat.get("cub"), undefined);
});

Deno.test("analyzeSudoers() finds raw netfilter grants", () => {
  const facts = analyzeSudoers(
    statements(
      `%xferproxy ALL=(root) NOPASSWD: ${BIN} dnat *\n`,
      "bear ALL = (ALL) NOPASSWD: /sbin/iptables-restore\nops ALL=(ALL) NOPASSWD: /usr/bin/systemctl, /usr/sbin/nft\nadmin ALL=(ALL) /usr/sbin/nft\nCmnd_Alias FW = /usr/sbin/iptables\nfw ALL=NOPASSWD: FW\n%sudo ALL=(ALL) NOPASSWD: ALL\n",
    ),
    WANTED,
  );
  assertEquals(facts.rawEntries.map((g) => g.line), [
    "bear ALL = (ALL) NOPASSWD: /sbin/iptables-restore",
    "ops ALL=(ALL) NOPASSWD: /usr/bin/systemctl, /usr/sbin/nft",
    "fw ALL=NOPASSWD: FW",
  ]);
  assertEquals(facts.requiretty, { on: [], off: [] });
});

Deno.test("analyzeSudoers() finds requiretty, which refuses the sessions' tty-less sudo call", () => {
  const facts = analyzeSudoers(
    statements(
      "Defaults    requiretty\nDefaults   env_reset, requiretty\nDefaults:%xferproxy !requiretty\nDefaults!/usr/bin/su !requiretty, env_keep=X\n# Defaults requiretty\n",
    ),
    WANTED,
  );
  assertEquals(facts.requiretty, {
    on: ["Defaults    requiretty", "Defaults   env_reset, requiretty"],
    off: ["Defaults:%xferproxy !requiretty", "Defaults!/usr/bin/su !requiretty, env_keep=X"],
  });
});

/** A host holding only the given files (directories are the paths' parents). */
function filesHost(files: Record<string, string>): CheckHost {
  const dirs = new Set(
    Object.keys(files).flatMap((p) => {
      const parts = p.split("/");
      return parts.slice(1, -1).map((_, i) => parts.slice(0, i + 2).join("/"));
    }),
  );
  return {
    root: "/",
    readText: (path) => Promise.resolve(files[path]),
    stat: (path) =>
      Promise.resolve(
        files[path] !== undefined || dirs.has(path)
          ? { uid: 0, gid: 0, mode: 0o440, isDirectory: dirs.has(path) }
          : undefined,
      ),
    list: (dir) =>
      Promise.resolve(
        [...Object.keys(files), ...dirs].filter((p) =>
          p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes("/")
        ).map((p) => p.slice(dir.length + 1)),
      ),
    run: () => Promise.resolve(undefined),
  };
}

Deno.test("loadSudoers() follows includes in sudo's order and skips what sudo skips", async () => {
  const sources = await loadSudoers(filesHost({
    "/etc/sudoers":
      "Defaults env_reset\n@includedir /etc/sudoers.d\n#include local\nroot ALL=ALL\n",
    "/etc/local": "local ALL=ALL\n@include /etc/sudoers\n",
    "/etc/sudoers.d/b": "b ALL=ALL\n",
    "/etc/sudoers.d/a": "a ALL=ALL\n",
    "/etc/sudoers.d/xferproxy.invalid":
      "%xferproxy ALL=(root) NOPASSWD: /usr/bin/xferproxy dnat *\n",
    "/etc/sudoers.d/c~": "c ALL=ALL\n",
    "/etc/sudoers.d/sub/d": "d ALL=ALL\n",
    "/etc/other.d/e": "e ALL=ALL\n",
  }));
  assertEquals(sources.statements.map((s) => `${s.file}: ${s.text}`), [
    "/etc/sudoers: Defaults env_reset",
    "/etc/sudoers.d/a: a ALL=ALL",
    "/etc/sudoers.d/b: b ALL=ALL",
    "/etc/local: local ALL=ALL",
    "/etc/sudoers: root ALL=ALL",
  ]);
  assertEquals(sources.skipped.map((s) => s.path), [
    "/etc/sudoers.d/c~",
    "/etc/sudoers.d/xferproxy.invalid",
  ]);
});

Deno.test("loadSudoers(): no includedir line, no drop-ins", async () => {
  const sources = await loadSudoers(filesHost({
    "/etc/sudoers": "root ALL=ALL\n",
    "/etc/sudoers.d/xferproxy": `%xferproxy ALL=(root) NOPASSWD: ${BIN} dnat *\n`,
  }));
  assertEquals(sources.files, ["/etc/sudoers"]);
});
