import { assertEquals, assertThrows } from "../_assert.ts";
import { UsageError } from "../../src/cli/parse.ts";
import {
  type AddReply,
  type AddRequest,
  dnatArgv,
  type DnatRequest,
  formatAddReply,
  parseAddReply,
  parseDnatArgs,
  sudoAddArgv,
  sudoCallerUid,
} from "../../src/dnat/contract.ts";
import { formatEndpoint } from "../../src/net/endpoint.ts";

const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";
/** A session's call: where it goes, nothing about who it is. */
const ADD = ["add", "--rule", "2", "--host", "1", "--server", "198.18.2.3:22"];
/** Root's call, naming the owner and addresses itself. */
const NAMED = [...ADD, "--owner", "4242", "--client", "198.18.1.2", "--proxy", "198.18.1.1"];

Deno.test("parseDnatArgs() reads typed values", () => {
  const command = parseDnatArgs(ADD);
  assertEquals(command.action, "add");
  if (command.action !== "add") return;
  assertEquals([command.request.rule, command.request.host], [2, 1]);
  assertEquals(formatEndpoint(command.request.server), "198.18.2.3:22");
  assertEquals(command.request.named, undefined);
  const named = parseDnatArgs(NAMED);
  if (named.action !== "add") throw new Error("not add");
  assertEquals(
    [named.request.named?.owner, named.request.named?.client.text, named.request.named?.proxy.text],
    [4242, "198.18.1.2", "198.18.1.1"],
  );
  assertEquals(parseDnatArgs(["del", "--session", ID]), { action: "del", id: ID });
  assertEquals(parseDnatArgs(["list", "--json"]), { action: "list", json: true });
  assertEquals(parseDnatArgs(["reap", "--all"]), { action: "reap", all: true });
  assertEquals(parseDnatArgs(["reap"]), { action: "reap", all: false });
  assertEquals(parseDnatArgs(["serve"]), { action: "serve" });
});

Deno.test("the session builds exactly the argv the helper parses back", () => {
  const request = (parseDnatArgs(ADD) as { request: AddRequest }).request;
  const argv = sudoAddArgv("/usr/bin/xferproxy", request);
  assertEquals(argv.slice(0, 4), ["-n", "/usr/bin/xferproxy", "dnat", "add"]);
  assertEquals(argv.slice(4), ADD.slice(1));
  assertEquals(parseDnatArgs(argv.slice(3)), { action: "add", request });
});

Deno.test("dnatArgv() and parseDnatArgs() round-trip every action", async (t) => {
  const requests: DnatRequest[] = [
    parseDnatArgs(ADD),
    parseDnatArgs(NAMED),
    { action: "del", id: ID },
    { action: "list", json: true },
    { action: "list", json: false },
    { action: "reap", all: true },
    { action: "reap", all: false },
    { action: "serve" },
    { action: "drain" },
    { action: "drain", reason: "kernel update; back at 07:00" },
    { action: "undrain" },
  ];
  for (const request of requests) {
    await t.step(dnatArgv(request).join(" "), () => {
      const argv = dnatArgv(request);
      assertEquals(argv[0], "dnat");
      assertEquals(parseDnatArgs(argv.slice(1)), request);
    });
  }
});

Deno.test("every reply the helper prints, the caller reads back as the same event", () => {
  const replies: AddReply[] = [
    {
      event: "installed",
      session: ID,
      proxy: "198.18.1.1:33001",
      server: "198.18.2.2:33001",
      filtering: true,
    },
    { event: "refused", reason: "rule 1 has no host 5" },
    { event: "failed", reason: "net.ipv4.ip_forward is 0" },
  ];
  for (const reply of replies) assertEquals(parseAddReply(formatAddReply(reply)), reply);
  // Only the last line counts: anything sudo or a warning printed before it is not the reply.
  assertEquals(
    parseAddReply(`noise\n${formatAddReply(replies[1] as AddReply)}`),
    replies[1],
  );
  assertEquals(parseAddReply(JSON.stringify({ event: "refused" })), undefined);
  assertEquals(parseAddReply(JSON.stringify({ event: "removed", reason: "x" })), undefined);
  assertEquals(parseAddReply("null"), undefined);
});

Deno.test("parseAddReply() reads the helper's answer and nothing else", () => {
  const reply: AddReply = {
    event: "installed",
    session: ID,
    proxy: "198.18.1.1:33001",
    server: "198.18.2.2:33001",
    filtering: true,
  };
  assertEquals(parseAddReply(`${JSON.stringify(reply)}\n`), reply);
  assertEquals(parseAddReply("Password:\n"), undefined);
  assertEquals(parseAddReply(JSON.stringify({ ...reply, filtering: "yes" })), undefined);
  assertEquals(parseAddReply(JSON.stringify({ ...reply, session: "../x" })), undefined);
});

Deno.test("parseDnatArgs() refuses anything that is not a typed value", async (t) => {
  const swap = (flag: string, value: string) => {
    const args = [...NAMED];
    args[args.indexOf(flag) + 1] = value;
    return args;
  };
  const cases: Array<[string[], string]> = [
    [
      swap("--client", "198.18.1.2 -j ACCEPT"),
      `--client must be an IP address, got "198.18.1.2 -j ACCEPT"`,
    ],
    [
      swap("--client", "198.18.1.2\n-A INPUT -j ACCEPT"),
      `--client must be an IP address, got "198.18.1.2\\n-A INPUT -j ACCEPT"`,
    ],
    [swap("--client", "example.com"), `--client must be an IP address, got "example.com"`],
    [swap("--proxy", "0x7f000001"), `--proxy must be an IP address, got "0x7f000001"`],
    [["del", "--session", "../../etc"], `--session must be a lower-case UUID, got "../../etc"`],
    [
      ["del", "--session", ID.toUpperCase()],
      `--session must be a lower-case UUID, got "${ID.toUpperCase()}"`,
    ],
    // Sessions' ids are issued, never named by the caller.
    [[...ADD, "--session", ID], "dnat add does not take --session"],
    [[...ADD, "--owner", "4242"], "dnat add takes --owner, --client and --proxy together"],
    [swap("--owner", "0"), `--owner must be an integer 1-4194304, got "0"`],
    [swap("--owner", "-1"), "bad arguments for dnat add: Option '--owner' argument is ambiguous"],
    [swap("--owner", "99999999"), `--owner must be an integer 1-4194304, got "99999999"`],
    [swap("--rule", "1;2"), `--rule must be an integer 1-10000, got "1;2"`],
    [swap("--host", "0 1"), `--host must be an integer 0-1000, got "0 1"`],
    [ADD.filter((a, i) => a !== "--rule" && ADD[i - 1] !== "--rule"), "--rule is required"],
    [
      [...ADD, "--to-destination", "203.0.113.1"],
      "bad arguments for dnat add: Unknown option '--to-destination'",
    ],
    [[...ADD, "extra"], "bad arguments for dnat add: Unexpected argument 'extra'"],
    [["del", "--session", ID, "--all"], "dnat del does not take --all"],
    [swap("--server", "198.18.2.3"), `--server must be ip:port, got "198.18.2.3"`],
    [swap("--server", "host:22"), `--server must be ip:port, got "host:22"`],
    [["serve", "--all"], "dnat serve does not take --all"],
    [
      ["flush"],
      `unknown dnat action "flush"; expected add, del, list, reap, serve, drain, undrain`,
    ],
    [[], "dnat needs an action: add, del, list, reap, serve, drain, undrain"],
    // The reason is logged and shown: no control characters, no terminal escapes, bounded.
    [["drain", "--reason", "a\nforged line"], "--reason must be printable ASCII of at most 200"],
    [["drain", "--reason", "\x1b[2J"], "--reason must be printable ASCII"],
    [["drain", "--reason", "x".repeat(201)], "--reason must be printable ASCII"],
    [["undrain", "--reason", "x"], "dnat undrain does not take --reason"],
  ];
  for (const [args, message] of cases) {
    await t.step(message, () => void assertThrows(() => parseDnatArgs(args), UsageError, message));
  }
});

Deno.test("sudoCallerUid(): a sudo caller only when sudo ran this very command", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const command = "/usr/local/bin/xferproxy dnat add --session x";
  assertEquals(sudoCallerUid(env({ SUDO_UID: "1001", SUDO_COMMAND: command })), 1001);
  // A root shell opened with sudo -i keeps SUDO_UID: that is root, not the user.
  assertEquals(sudoCallerUid(env({ SUDO_UID: "1001", SUDO_COMMAND: "/bin/bash" })), undefined);
  assertEquals(sudoCallerUid(env({ SUDO_UID: "0", SUDO_COMMAND: command })), undefined);
  assertEquals(sudoCallerUid(env({})), undefined);
  assertEquals(sudoCallerUid(env({ SUDO_UID: "x", SUDO_COMMAND: command })), undefined);
});
