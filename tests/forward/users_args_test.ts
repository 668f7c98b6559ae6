import { assertEquals, assertThrows } from "../_assert.ts";
import {
  hashPassword,
  parseUsers,
  serializeUsers,
  UsersFileError,
  verifyPassword,
} from "../../src/forward/users.ts";
import { parseForwardArgs, parseProxyUrl } from "../../src/forward/args.ts";
import { UsageError } from "../../src/cli/parse.ts";

Deno.test("hashPassword() salts per user and verifyPassword() checks in constant time", () => {
  const a = hashPassword("secret");
  const b = hashPassword("secret");
  assertEquals(a.salt === b.salt || a.hash === b.hash, false);
  assertEquals(verifyPassword({ ...a, allow: [], admin: false }, "secret"), true);
  assertEquals(verifyPassword({ ...a, allow: [], admin: false }, "Secret"), false);
});

Deno.test("parseUsers() round-trips and refuses malformed files", async (t) => {
  const file = {
    version: 1 as const,
    users: new Map([["alice", { ...hashPassword("x"), allow: ["198.19.0.0/16"], admin: false }]]),
  };
  assertEquals(parseUsers(serializeUsers(file), "u.json"), file);
  const cases: Array<[string, string]> = [
    ["nope", `Users file "u.json" is not JSON`],
    [`{"users": {}}`, `must be {"version": 1, "users": {...}}`],
    [
      `{"version": 1, "users": {"Bad Name": {"salt": "a", "hash": "b", "allow": []}}}`,
      "user name must match",
    ],
    [
      `{"version": 1, "users": {"bob": {"salt": 1, "hash": "b", "allow": []}}}`,
      "salt and hash must be strings",
    ],
    [
      `{"version": 1, "users": {"bob": {"salt": "a", "hash": "b", "allow": ["not a;dest"]}}}`,
      "allowed destination must be a CIDR, a host name or *",
    ],
  ];
  for (const [text, fragment] of cases) {
    await t.step(
      fragment,
      () => void assertThrows(() => parseUsers(text, "u.json"), UsersFileError, fragment),
    );
  }
});

Deno.test("parseProxyUrl() reads dnat[s]://user[:pass]@host[:port] with Aspera Proxy's default ports", () => {
  assertEquals(parseProxyUrl("dnat://alice:p%40ss@proxy.example"), {
    secure: false,
    host: "proxy.example",
    port: 9091,
    user: "alice",
    password: "p@ss",
  });
  assertEquals(parseProxyUrl("dnats://bob@198.18.30.1:8443"), {
    secure: true,
    host: "198.18.30.1",
    port: 8443,
    user: "bob",
  });
  assertEquals(parseProxyUrl("dnats://[2001:db8::1]").host, "2001:db8::1");
  assertThrows(() => parseProxyUrl("http://proxy"), UsageError, "--proxy must look like");
  assertThrows(
    () => parseProxyUrl("dnat://proxy:99999"),
    UsageError,
    "--proxy port must be 1-65535",
  );
});

Deno.test("parseForwardArgs() reads serve, user and connect", () => {
  assertEquals(parseForwardArgs([]), { action: "serve" });
  assertEquals(
    parseForwardArgs([
      "user",
      "add",
      "alice",
      "--allow",
      "198.19.0.0/16,files.example",
      "--allow",
      "*",
      "--admin",
    ]),
    {
      action: "user-add",
      name: "alice",
      passwordStdin: false,
      allow: ["198.19.0.0/16", "files.example", "*"],
      admin: true,
    },
  );
  assertEquals(parseForwardArgs(["user", "del", "alice"]), { action: "user-del", name: "alice" });
  assertEquals(parseForwardArgs(["user", "list"]), { action: "user-list" });
  const c = parseForwardArgs([
    "connect",
    "--proxy",
    "dnat://a@p",
    "--print-mapping",
    "198.19.1.1",
    "2222",
  ]);
  assertEquals(
    c.action === "connect" ? [c.destination, c.sshPort, c.udpPort, c.printMapping] : [],
    ["198.19.1.1", 2222, 33001, true],
  );
  assertThrows(() => parseForwardArgs(["user", "add", "../x"]), UsageError, "user name must match");
  assertThrows(
    () => parseForwardArgs(["user", "add", "a", "--allow", "1.2.3.4;x"]),
    UsageError,
    "allowed destination must be",
  );
  assertThrows(
    () => parseForwardArgs(["connect", "198.19.1.1"]),
    UsageError,
    "forward connect needs --proxy",
  );
  assertThrows(() => parseForwardArgs(["fly"]), UsageError, `unknown forward action "fly"`);
});

Deno.test("parseForwardArgs() reads connect's --password-file, and refuses a second password in the URL", () => {
  const c = parseForwardArgs([
    "connect",
    "--proxy",
    "dnats://alice@proxy.example",
    "--password-file",
    "/home/alice/.xferproxy-pass",
    "198.19.1.1",
  ]);
  assertEquals(c.action === "connect" ? [c.passwordFile, c.proxy.password] : [], [
    "/home/alice/.xferproxy-pass",
    undefined,
  ]);
  assertThrows(
    () =>
      parseForwardArgs([
        "connect",
        "--proxy",
        "dnats://alice:pw@proxy.example",
        "--password-file",
        "/p",
        "198.19.1.1",
      ]),
    UsageError,
    "give the password once: --password-file or the --proxy URL, not both",
  );
});
