import { assertEquals, assertThrows } from "../_assert.ts";
import { parseCommandLine, UsageError } from "../../src/cli/parse.ts";
import { reportError } from "../../src/cli/report.ts";
import { UserError } from "../../src/errors.ts";
import { checkMode } from "../../src/check/command.ts";
import { dnatMode } from "../../src/dnat/command.ts";
import { forwardMode } from "../../src/forward/command.ts";
import { reverseMode } from "../../src/reverse/command.ts";
import { LIBC_PATHS, LIBNFTABLES_PATHS } from "../../src/process/libraries.ts";
import { MODES } from "../../main.ts";
import { captureOutput } from "../_fakes/output.ts";

/** What a command line does: the mode it runs, and for help, what it prints. */
async function outcome(argv: string[]): Promise<string> {
  const invocation = parseCommandLine(MODES, argv);
  if (invocation.mode !== "help") return invocation.mode;
  const output = captureOutput();
  const status = await invocation.run({ output, self: "/x", env: () => undefined });
  const [text, where] = output.stdout ? [output.stdout, ""] : [output.stderr, " on stderr"];
  const shown = MODES.find((m) => text === m.usage + "\n");
  const what = shown?.name ?? (text.startsWith("xferproxy - ") ? "overview" : "?");
  return `help ${what}${where}${status === 0 ? "" : `, exit ${status}`}`;
}

Deno.test("parseCommandLine() picks the mode; -h or --help anywhere asks for its help", async (t) => {
  const cases: Array<[string[], string]> = [
    [[], "help overview on stderr, exit 2"],
    [["--help"], "help overview"],
    [["help"], "help overview"],
    [["help", "check"], "help check"],
    [["help", "help"], "help help"],
    [["version"], "version"],
    [["--version"], "version"],
    [["check", "config"], "check"],
    [["check", "--help"], "help check"],
    [["reverse", "-h"], "help reverse"],
    [["forward", "user", "list", "--help"], "help forward"],
    [["dnat", "--help"], "help dnat"],
    [["version", "-h"], "help version"],
    [["reverse"], "reverse"],
    [["dnat", "list"], "dnat"],
  ];
  for (const [argv, expected] of cases) {
    await t.step(
      argv.join(" ") || "(none)",
      async () => assertEquals(await outcome(argv), expected),
    );
  }
});

Deno.test("the overview lists every mode of the table", async () => {
  const output = captureOutput();
  await parseCommandLine(MODES, ["--help"]).run({ output, self: "/x", env: () => undefined });
  for (const mode of MODES) assertEquals(output.stdout.includes(`\n  ${mode.name} `), true);
});

Deno.test("each mode parses its own arguments fully", async (t) => {
  const cases: Array<[string, () => unknown, unknown]> = [
    ["check", () => checkMode.parse([]), { topic: "all", json: false }],
    ["check config --config", () => checkMode.parse(["config", "--config", "/etc/a.conf"]), {
      topic: "config",
      json: false,
      configPath: "/etc/a.conf",
    }],
    ["check --config= defaults", () => checkMode.parse(["--config=/a", "defaults"]), {
      topic: "defaults",
      json: false,
      configPath: "/a",
    }],
    ["check system --json --root", () => checkMode.parse(["system", "--json", "--root", "/mnt"]), {
      topic: "system",
      json: true,
      root: "/mnt",
    }],
    ["check upstreams --user", () => checkMode.parse(["upstreams", "--user", "bear"]), {
      topic: "upstreams",
      json: false,
      user: "bear",
    }],
    ["reverse", () => reverseMode.parse([]), {}],
    ["reverse --config", () => reverseMode.parse(["--config", "/a"]), { configPath: "/a" }],
    ["forward user list", () => forwardMode.parse(["user", "list"]), {
      command: { action: "user-list" },
    }],
    ["forward --config= serve", () => forwardMode.parse(["--config=/a", "serve"]), {
      configPath: "/a",
      command: { action: "serve" },
    }],
    ["dnat reap --config", () => dnatMode.parse(["reap", "--config", "/a"]), {
      configPath: "/a",
      request: { action: "reap", all: false },
    }],
  ];
  for (const [name, parse, expected] of cases) {
    await t.step(name, () => assertEquals(parse(), expected));
  }
});

Deno.test("parseCommandLine() names what is wrong in one line", async (t) => {
  const cases: Array<[string[], string, string | undefined]> = [
    [
      ["fly"],
      `unknown mode "fly"; expected one of: reverse, forward, check, dnat, version, help`,
      undefined,
    ],
    [
      ["--fly"],
      `unknown option "--fly"; expected one of: reverse, forward, check, dnat, version, help`,
      undefined,
    ],
    [["check", "--fly"], `unknown option "--fly" for check`, "check"],
    [
      ["check", "cpu"],
      `unknown check "cpu"; expected one of: config, defaults, system, users, upstreams`,
      "check",
    ],
    [
      ["check", "all"],
      `unknown check "all"; expected one of: config, defaults, system, users, upstreams`,
      "check",
    ],
    [
      ["check", "upstreams", "--root", "/mnt"],
      "check upstreams logs in to live servers: it does not take --root",
      "check",
    ],
    [["check", "system", "--user", "bear"], "--user goes with check upstreams", "check"],
    [["check", "config", "extra"], `unexpected argument "extra" for check`, "check"],
    [["check", "--config"], `option --config needs a value`, "check"],
    [["check", "--root", "relative"], `--root must be an absolute path, got "relative"`, "check"],
    [["reverse", "extra"], `unexpected argument "extra" for reverse`, "reverse"],
    [["reverse", "-x"], `unknown option "-x" for reverse`, "reverse"],
    [["version", "--config", "/a"], `unknown option "--config" for version`, "version"],
    [
      ["help", "fly"],
      `no help for unknown mode "fly"; modes: reverse, forward, check, dnat, version, help`,
      undefined,
    ],
    [["help", "check", "dnat"], `unexpected argument "dnat"`, "help"],
    [["check", "--config="], `--config needs a file path`, undefined],
    [["dnat", "reap", "--config"], `option --config needs a value`, "dnat"],
    [["dnat"], "dnat needs an action: add, del, list, reap, serve, drain, undrain", "dnat"],
    [["forward", "serve", "now"], `unexpected argument "now" for forward serve`, "forward"],
  ];
  for (const [argv, message, helpFor] of cases) {
    await t.step(argv.join(" "), () => {
      const error = assertThrows(() => parseCommandLine(MODES, argv), UsageError);
      assertEquals([error.message, error.helpFor, error.exitCode], [message, helpFor, 2]);
    });
  }
});

Deno.test("each mode keeps only the permissions it needs", async (t) => {
  const needs = (argv: string[]) => parseCommandLine(MODES, argv).needs;
  await t.step("help and version keep nothing", () => {
    assertEquals([needs([]), needs(["version"]), needs(["help", "dnat"])], [{}, {}, {}]);
  });
  await t.step(
    "only reverse sessions (execve) and the DNAT service (socket, pidfds, /proc, nft) load libraries",
    () => {
      assertEquals(needs(["reverse"]).ffi, LIBC_PATHS);
      assertEquals(needs(["dnat", "serve"]).ffi, [...LIBNFTABLES_PATHS, ...LIBC_PATHS]);
      for (const argv of [["dnat", "list"], ["forward"], ["check", "system"], ["check"]]) {
        assertEquals(needs(argv).ffi, undefined, argv.join(" "));
      }
    },
  );
  await t.step("check config reads, check upstreams connects, neither runs programs", () => {
    assertEquals(needs(["check", "config"]), { read: true, env: true });
    assertEquals(needs(["check", "upstreams"]), { read: true, env: true, net: true });
  });
  await t.step(
    "forward connect neither writes nor runs; the daemon runs either backend's tools",
    () => {
      assertEquals(needs(["forward", "connect", "--proxy", "dnat://u@h", "d"]), {
        read: true,
        net: true,
        env: true,
      });
      // Forward mode on nftables (issue 20): the daemon's sessions go through the chosen backend.
      assertEquals(needs(["forward"]).run?.includes("nft"), true);
      assertEquals(needs(["forward"]).run?.includes("iptables-restore"), true);
      assertEquals(needs(["forward"]).run?.includes("openssl"), true);
    },
  );
  await t.step(
    "of the dnat actions only the service reaches the network (to check servers)",
    () => {
      assertEquals(needs(["dnat", "reap"]).net, undefined);
      assertEquals(
        needs(["dnat", "add", "--rule", "1", "--host", "0", "--server", "198.18.2.2:22"]).net,
        undefined,
      );
      assertEquals(needs(["dnat", "serve"]).net, true);
    },
  );
});

Deno.test("reportError() prints an expected error's line and status, and leaves bugs alone", () => {
  const output = captureOutput();
  assertEquals(reportError(new UsageError("dnat needs an action", "dnat"), output), 2);
  assertEquals(reportError(new UserError("Cannot load config"), output), 1);
  assertEquals(reportError(new UserError("gone", { exitCode: 255 }), output), 255);
  assertEquals(reportError(new TypeError("bug"), output), undefined);
  assertEquals(
    output.stderr,
    'xferproxy: dnat needs an action (Try "xferproxy dnat --help".)\n' +
      "xferproxy: Cannot load config\nxferproxy: gone\n",
  );
});
