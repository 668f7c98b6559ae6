import { assertEquals } from "../_assert.ts";
import { checkCommand } from "../../src/ssh/policy.ts";
import { splitShellWords } from "../../src/ssh/shell_words.ts";
import type { CommandPattern } from "../../src/config/mod.ts";

const DEFAULTS: CommandPattern[] = [
  { kind: "exec", argv: ["ascp"] },
  { kind: "exec", argv: ["ascp4"] },
  { kind: "exec", argv: ["scp"] },
  { kind: "exec", argv: ["rsync", "--server"] },
  { kind: "subsystem", name: "sftp" },
];

Deno.test("splitShellWords() splits like sh does for plain commands", async (t) => {
  const cases: Array<[string, string[]]> = [
    ["scp -t /data", ["scp", "-t", "/data"]],
    ["scp  -f  '/data/my file.txt'", ["scp", "-f", "/data/my file.txt"]],
    [`scp -t "/data/a b"`, ["scp", "-t", "/data/a b"]],
    [`scp -t /data/a\\ b`, ["scp", "-t", "/data/a b"]],
    [`scp -t "/x/\\"q\\""`, ["scp", "-t", `/x/"q"`]],
    [`scp -f '/x/$(not run)'`, ["scp", "-f", "/x/$(not run)"]],
    [`scp -f /data/*.txt ~/in`, ["scp", "-f", "/data/*.txt", "~/in"]],
    [`rsync --server -vlogDtpre.iLsfxCIvu . /data/`, [
      "rsync",
      "--server",
      "-vlogDtpre.iLsfxCIvu",
      ".",
      "/data/",
    ]],
    [`a''b ""`, ["ab", ""]],
    [``, []],
  ];
  for (const [command, words] of cases) {
    await t.step(
      command || "(empty)",
      () => assertEquals(splitShellWords(command), { ok: true, words }),
    );
  }
});

Deno.test("checkCommand() allows the default transfer commands", async (t) => {
  const allowed = [
    "scp -t /x",
    "scp -f /data/report.pdf",
    "ascp --mode=recv --user=bear /tmp",
    "ascp4 -x",
    "rsync --server -logDtpre.iLsfxC . /data",
    "scp -t '/dir with spaces'",
  ];
  for (const command of allowed) {
    await t.step(
      command,
      () => assertEquals(checkCommand(DEFAULTS, { kind: "exec", command }), { allowed: true }),
    );
  }
  await t.step(
    "subsystem sftp",
    () =>
      assertEquals(checkCommand(DEFAULTS, { kind: "subsystem", name: "sftp" }), { allowed: true }),
  );
});

Deno.test("checkCommand() refuses injection, other programs and shells", async (t) => {
  const refused: Array<[string, string]> = [
    ["scp -t /x; sh evil", `command refused: it contains shell syntax ";"`],
    ["scp -t /x && id", `command refused: it contains shell syntax "&"`],
    ["scp -t /x | nc h 1", `command refused: it contains shell syntax "|"`],
    ["scp -t $(id)", `command refused: it contains shell syntax "$"`],
    ["scp -t `id`", 'command refused: it contains shell syntax "`"'],
    [`scp -t "/x$(id)"`, `command refused: it contains shell syntax "$" inside double quotes`],
    ["scp -t /x\nid", `command refused: it contains shell syntax "\\n"`],
    ["scp -t /x > /etc/passwd", `command refused: it contains shell syntax ">"`],
    ["scp -t /x < /etc/shadow", `command refused: it contains shell syntax "<"`],
    ["scp -t (x)", `command refused: it contains shell syntax "("`],
    ["scp -t 'unterminated", "command refused: it has an unterminated ' quote"],
    ["scp -t /x \\", "command refused: it ends with a backslash"],
    ["scp -t /x #comment", `command refused: it contains a shell comment "#"`],
    ["sh -c 'scp -t /x'", `command "sh" is not allowed`],
    ["/usr/bin/scp -t /x", `command "/usr/bin/scp" is not allowed`],
    ["scpx -t /x", `command "scpx" is not allowed`],
    ["rsync -e sh x", `command "rsync" is not allowed`],
    ["bash", `command "bash" is not allowed`],
    ["   ", "interactive shells are not allowed"],
  ];
  for (const [command, reason] of refused) {
    await t.step(
      JSON.stringify(command),
      () =>
        assertEquals(checkCommand(DEFAULTS, { kind: "exec", command }), { allowed: false, reason }),
    );
  }
  await t.step(
    "shell",
    () =>
      assertEquals(checkCommand(DEFAULTS, { kind: "shell" }), {
        allowed: false,
        reason: "interactive shells are not allowed",
      }),
  );
  await t.step(
    "other subsystem",
    () =>
      assertEquals(checkCommand(DEFAULTS, { kind: "subsystem", name: "netconf" }), {
        allowed: false,
        reason: `subsystem "netconf" is not allowed`,
      }),
  );
});

Deno.test("checkCommand() with * allows anything, shells included", () => {
  const any: CommandPattern[] = [{ kind: "any" }];
  assertEquals(checkCommand(any, { kind: "exec", command: "echo a; id" }), { allowed: true });
  assertEquals(checkCommand(any, { kind: "shell" }), { allowed: true });
  assertEquals(checkCommand(any, { kind: "subsystem", name: "x" }), { allowed: true });
});
