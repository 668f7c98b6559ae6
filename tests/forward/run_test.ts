import { assertEquals } from "../_assert.ts";
import { forwardMode } from "../../src/forward/command.ts";
import { type ConnectOptions, type ForwardPlatform, runForward } from "../../src/forward/run.ts";
import { createFakeFs } from "../_fakes/fs.ts";
import { captureOutput } from "../_fakes/output.ts";

/** Runs `xferproxy forward connect …` on a platform whose client records what it was given. */
async function connect(argv: string[], env: Record<string, string> = {}) {
  const given: ConnectOptions[] = [];
  const platform = {
    fs: createFakeFs({ "/home/alice/pass": { text: "from-file\n", uid: 1000, mode: 0o100600 } }),
    connect: (options: ConnectOptions) => {
      given.push(options);
      return Promise.resolve(0);
    },
  } as unknown as ForwardPlatform;
  const output = captureOutput();
  const code = await runForward(forwardMode.parse(["connect", ...argv]), platform, {
    output,
    self: "/usr/bin/xferproxy",
    env: (name) => env[name],
  });
  return { code, password: given[0]?.password, stderr: output.stderr };
}

Deno.test("forward connect: a password in the URL works, with one warning line on stderr", async () => {
  assertEquals(await connect(["--proxy", "dnat://alice:in-url@198.18.30.1", "198.19.1.1"]), {
    code: 0,
    password: "in-url",
    stderr:
      "xferproxy: WARN the password in the --proxy URL shows in ps to every user of this host; use --password-file PATH or XFERPROXY_PROXY_PASS\n",
  });
});

Deno.test("forward connect: --password-file and XFERPROXY_PROXY_PASS keep the password out of argv", async () => {
  assertEquals(
    await connect([
      "--proxy",
      "dnat://alice@198.18.30.1",
      "--password-file",
      "/home/alice/pass",
      "198.19.1.1",
    ]),
    { code: 0, password: "from-file", stderr: "" },
  );
  assertEquals(
    await connect(["--proxy", "dnat://alice@198.18.30.1", "198.19.1.1"], {
      XFERPROXY_PROXY_PASS: "from-env",
    }),
    { code: 0, password: "from-env", stderr: "" },
  );
});
