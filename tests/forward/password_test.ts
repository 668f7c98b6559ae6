import { assertEquals, assertRejects } from "../_assert.ts";
import { connectPassword } from "../../src/forward/password.ts";
import { UserError } from "../../src/errors.ts";
import { createFakeFs } from "../_fakes/fs.ts";

const noEnv = () => undefined;
const fs = createFakeFs({
  "/home/alice/pass": { text: "s3cret\nignored\n", uid: 1000, mode: 0o100600 },
  "/home/alice/crlf": { text: "s3cret\r\n", uid: 1000, mode: 0o100400 },
  "/home/alice/open": { text: "s3cret", uid: 1000, mode: 0o100644 },
  "/home/alice/empty": { text: "\n", uid: 1000, mode: 0o100600 },
  "/home/alice/locked": new Deno.errors.PermissionDenied("Permission denied (os error 13)"),
});

Deno.test("connectPassword() reads the first line of --password-file, without a warning", async () => {
  for (const path of ["/home/alice/pass", "/home/alice/crlf"]) {
    assertEquals(await connectPassword({ passwordFile: path }, { env: noEnv, fs }), {
      password: "s3cret",
      warnings: [],
    });
  }
});

Deno.test("connectPassword() warns about a password file others can read", async () => {
  assertEquals(await connectPassword({ passwordFile: "/home/alice/open" }, { env: noEnv, fs }), {
    password: "s3cret",
    warnings: [
      `WARN the password file "/home/alice/open" is readable by other users (mode 0644); chmod 600 it`,
    ],
  });
});

Deno.test("connectPassword() refuses an empty or unreadable password file in one line", async () => {
  await assertRejects(
    () => connectPassword({ passwordFile: "/home/alice/empty" }, { env: noEnv, fs }),
    UserError,
    `The password file "/home/alice/empty" is empty: put the password on its first line`,
  );
  await assertRejects(
    () => connectPassword({ passwordFile: "/home/alice/locked" }, { env: noEnv, fs }),
    UserError,
    `Cannot read the password file "/home/alice/locked": Permission denied (os error 13)`,
  );
  await assertRejects(
    () => connectPassword({ passwordFile: "/nowhere" }, { env: noEnv, fs }),
    UserError,
    `Cannot read the password file "/nowhere": No such file: /nowhere`,
  );
});

Deno.test("connectPassword() takes a password in the URL, with a warning that it shows in ps", async () => {
  const env = (name: string) => name === "XFERPROXY_PROXY_PASS" ? "from-env" : undefined;
  assertEquals(await connectPassword({ urlPassword: "in-url" }, { env, fs }), {
    password: "in-url",
    warnings: [
      "WARN the password in the --proxy URL shows in ps to every user of this host; use --password-file PATH or XFERPROXY_PROXY_PASS",
    ],
  });
});

Deno.test("connectPassword() falls back to XFERPROXY_PROXY_PASS, then ASPERA_PROXY_PASS", async () => {
  const both = (name: string) =>
    ({ XFERPROXY_PROXY_PASS: "ours", ASPERA_PROXY_PASS: "aspera" })[name];
  const aspera = (name: string) => name === "ASPERA_PROXY_PASS" ? "aspera" : undefined;
  assertEquals(await connectPassword({}, { env: both, fs }), { password: "ours", warnings: [] });
  assertEquals(await connectPassword({}, { env: aspera, fs }), {
    password: "aspera",
    warnings: [],
  });
  assertEquals(await connectPassword({}, { env: noEnv, fs }), { warnings: [] });
});
