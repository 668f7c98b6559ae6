import { assertEquals, assertMatch } from "../_assert.ts";
import { reportBug, reportError } from "../../src/cli/report.ts";
import { asUserError, ServiceStartError, UserError, withRootHint } from "../../src/errors.ts";
import { bindPlatform, type ModeCommand } from "../../src/cli/command.ts";
import { captureOutput } from "../_fakes/output.ts";

Deno.test("reportError() prints a user error's line; a daemon's says Aspera Proxy's words", () => {
  const output = captureOutput();
  assertEquals(reportError(new UserError("Cannot do it", { exitCode: 3 }), output), 3);
  assertEquals(reportError(ServiceStartError.from(new UserError("no iptables")), output), 1);
  assertEquals(reportError(new TypeError("a bug"), output), undefined);
  assertEquals(output.stderr.split("\n"), [
    "xferproxy: Cannot do it",
    "xferproxy: ERR Failed to initialize proxy service: no iptables",
    "",
  ]);
});

Deno.test("reportBug() says it is a bug in one line, with where, and exits 1", () => {
  const output = captureOutput();
  const bug = new TypeError("x is undefined");
  assertEquals(reportBug(bug, output), 1);
  const frame = bug.stack?.split("\n")[1]?.trim() ?? "";
  assertMatch(frame, /^at /);
  assertEquals(
    output.stderr,
    `xferproxy: internal error, please report it with the command line: TypeError: x is undefined (${frame})\n`,
  );
  const thrown = captureOutput();
  assertEquals(reportBug("a string", thrown), 1);
  assertEquals(
    thrown.stderr,
    "xferproxy: internal error, please report it with the command line: a string\n",
  );
});

Deno.test("asUserError() words a system call's failure as a user error, nothing else", async (t) => {
  const cases: Array<[string, Error, string | undefined]> = [
    [
      "permission denied on a path",
      new Deno.errors.PermissionDenied("Permission denied (os error 13): mkdir '/var/lib/x'"),
      `Cannot mkdir "/var/lib/x": permission denied`,
    ],
    [
      "not found on a path",
      new Deno.errors.NotFound("No such file or directory (os error 2): open '/etc/a b'"),
      `Cannot open "/etc/a b": no such file or directory`,
    ],
    [
      "no path",
      new Deno.errors.AddrInUse("Address already in use (os error 98)"),
      "Address already in use",
    ],
    [
      "a plain Error with an errno code",
      Object.assign(new Error("Input/output error (os error 5): writefile '/x'"), { code: "EIO" }),
      `Cannot writefile "/x": input/output error`,
    ],
    ["a bug", new TypeError("x is undefined"), undefined],
    ["a denied Deno permission", new Deno.errors.NotCapable("Requires run access"), undefined],
  ];
  for (const [name, error, line] of cases) {
    await t.step(name, () => {
      const known = asUserError(error);
      if (line === undefined) return assertEquals(known, error);
      assertEquals(known instanceof UserError, true);
      assertEquals([(known as UserError).userMessage, (known as UserError).cause], [line, error]);
    });
  }
});

Deno.test("a daemon's failure, whatever it is, ends as Aspera Proxy's line with the reason", async () => {
  const daemon: ModeCommand<{ serve: boolean }, void> = {
    name: "d",
    summary: "",
    usage: "",
    parse: (args) => ({ serve: args[0] === "serve" }),
    needs: () => ({}),
    daemon: (args) => args.serve,
    run: () =>
      Promise.reject(
        new Deno.errors.PermissionDenied("Permission denied (os error 13): mkdir '/s'"),
      ),
  };
  const entry = bindPlatform(daemon, () => Promise.resolve());
  const context = { output: captureOutput(), self: "/x", env: () => undefined };
  const served = await entry.prepare(["serve"]).run(context).catch((e) => e);
  assertEquals(
    (served as ServiceStartError).userMessage,
    `ERR Failed to initialize proxy service: Cannot mkdir "/s": permission denied`,
  );
  const once = await entry.prepare(["list"]).run(context).catch((e) => e);
  assertEquals(once instanceof Deno.errors.PermissionDenied, true);
});

Deno.test("withRootHint() ends a denied system call's line with the fix, nothing else", () => {
  const denied = new Deno.errors.PermissionDenied("Permission denied (os error 13): mkdir '/s'");
  const known = asUserError(denied) as UserError;
  assertEquals(
    (withRootHint(known) as UserError).userMessage,
    `Cannot mkdir "/s": permission denied (run it as root)`,
  );
  const daemon = withRootHint(ServiceStartError.from(denied)) as ServiceStartError;
  assertEquals(
    [daemon instanceof ServiceStartError, daemon.userMessage],
    [
      true,
      `ERR Failed to initialize proxy service: Cannot mkdir "/s": permission denied (run it as root)`,
    ],
  );
  const shown = ServiceStartError.from(denied).asShown();
  assertEquals(withRootHint(shown), shown);
  const other = new UserError("no such rule");
  assertEquals(withRootHint(other), other);
  const missing = asUserError(new Deno.errors.NotFound("No such file or directory (os error 2)"));
  assertEquals(withRootHint(missing), missing);
});
