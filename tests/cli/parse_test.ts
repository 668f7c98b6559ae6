import { assertEquals, assertThrows } from "../_assert.ts";
import { parseCommand, parseOrSay, resolveConfigPath, UsageError } from "../../src/cli/parse.ts";

Deno.test("parseCommand() reads each mode", async (t) => {
  const cases: Array<[string[], unknown]> = [
    [[], { mode: "help" }],
    [["--help"], { mode: "help" }],
    [["help"], { mode: "help" }],
    [["help", "check"], { mode: "help", topic: "check" }],
    [["version"], { mode: "version" }],
    [["--version"], { mode: "version" }],
    [["check"], { mode: "check", topic: "all", json: false }],
    [["check", "config"], { mode: "check", topic: "config", json: false }],
    [["check", "config", "--config", "/etc/a.conf"], {
      mode: "check",
      topic: "config",
      json: false,
      configPath: "/etc/a.conf",
    }],
    [["check", "--config=/a", "defaults"], {
      mode: "check",
      topic: "defaults",
      json: false,
      configPath: "/a",
    }],
    [["check", "system", "--json", "--root", "/mnt/img"], {
      mode: "check",
      topic: "system",
      json: true,
      root: "/mnt/img",
    }],
    [["check", "upstreams", "--user", "bear"], {
      mode: "check",
      topic: "upstreams",
      json: false,
      user: "bear",
    }],
    [["check", "--help"], { mode: "help", topic: "check" }],
    [["reverse"], { mode: "reverse" }],
    [["reverse", "--config", "/a"], { mode: "reverse", configPath: "/a" }],
    [["reverse", "-h"], { mode: "help", topic: "reverse" }],
    [["forward", "user", "list"], { mode: "forward", args: ["user", "list"] }],
    [["dnat", "reap", "--config", "/a"], { mode: "dnat", args: ["reap"], configPath: "/a" }],
    [["dnat", "--help"], { mode: "help", topic: "dnat" }],
  ];
  for (const [argv, expected] of cases) {
    await t.step(
      argv.join(" ") || "(none)",
      () => assertEquals(parseCommand(argv) as unknown, expected),
    );
  }
});

Deno.test("parseCommand() names what is wrong in one line", async (t) => {
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
    [["check", "--config="], `--config needs a file path`, undefined],
  ];
  for (const [argv, message, helpFor] of cases) {
    await t.step(argv.join(" "), () => {
      const error = assertThrows(() => parseCommand(argv), UsageError);
      assertEquals([error.message, error.helpFor], [message, helpFor]);
    });
  }
});

Deno.test("resolveConfigPath() prefers --config, then XFERPROXY_CONFIG, then the default", () => {
  const env = (values: Record<string, string>) => (name: string) => values[name];
  assertEquals(
    resolveConfigPath({ configPath: "/a" }, env({ XFERPROXY_CONFIG: "/b" }), "/c"),
    "/a",
  );
  assertEquals(resolveConfigPath({}, env({ XFERPROXY_CONFIG: "/b" }), "/c"), "/b");
  assertEquals(resolveConfigPath({}, env({ XFERPROXY_CONFIG: "" }), "/c"), "/c");
  assertEquals(resolveConfigPath({}, env({}), "/c"), "/c");
});

Deno.test("parseOrSay() turns a usage error into its line with a hint, and passes bugs on", () => {
  const said: string[] = [];
  const say = (line: string) => void said.push(line);
  const hint = (mode: string) => `Try "xferproxy ${mode} --help".`;
  assertEquals(parseOrSay(() => 42, "dnat", say, hint), 42);
  assertEquals(
    parseOrSay(
      () => {
        throw new UsageError("dnat needs an action", "dnat");
      },
      "dnat",
      say,
      hint,
    ),
    undefined,
  );
  assertEquals(said, ['xferproxy: dnat needs an action (Try "xferproxy dnat --help".)\n']);
  let bug: unknown;
  try {
    parseOrSay(
      () => {
        throw new TypeError("bug");
      },
      "dnat",
      say,
      hint,
    );
  } catch (error) {
    bug = error;
  }
  assertEquals(bug instanceof TypeError, true);
});
