import { assertEquals, assertMatch } from "../_assert.ts";
import { Buffer } from "node:buffer";
import { type ReversePlatform, runReverse } from "../../src/reverse/run.ts";
import { reverseMode } from "../../src/reverse/command.ts";
import { balancerPicker, createBalancer } from "../../src/balancer/balancer.ts";
import { fallbackRegistrar } from "../../src/reverse/registrar.ts";
import type { SharedJson } from "../../src/balancer/shared_json.ts";
import { createFakeFs, type FakeFile } from "../_fakes/fs.ts";
import { fakeKeyBlob } from "../_fakes/ssh_server.ts";
import { recordLogs } from "../_fakes/logs.ts";
import { captureOutput } from "../_fakes/output.ts";

const KEY = fakeKeyBlob("ssh-ed25519", 1);
const PRIVATE_KEY = Deno.readTextFileSync(
  new URL("../fixtures/keys/openssh_plain", import.meta.url),
);
const CONFIG = `<server><state_directory>/s</state_directory><rproxy>
<enabled>true</enabled><known_hosts>/kh</known_hosts><log_directory>/logs</log_directory>
<rules><rule><host>198.18.2.2</host><squash_user>xfer</squash_user><keyfile>/k</keyfile></rule></rules>
</rproxy></server>`;
const SESSION_ENV: Record<string, string> = {
  SSH_CONNECTION: "198.18.1.2 50000 198.18.1.1 22",
  USER: "bear",
  HOME: "/home/bear",
};

const noState: SharedJson = {
  update: (change) => Promise.resolve(change(undefined).result),
};

/** A platform whose every effect lands in `events`, in order. */
function fakePlatform(options: {
  files?: Record<string, string | FakeFile>;
  execFails?: string;
  sshInstalled?: boolean;
} = {}) {
  const events: string[] = [];
  const logs = recordLogs(events);
  const platform: ReversePlatform = {
    fs: createFakeFs({
      "/c.conf": CONFIG,
      "/k": { text: PRIVATE_KEY, uid: 0, mode: 0o100640 },
      "/kh": `198.18.2.2 ssh-ed25519 ${Buffer.from(KEY).toString("base64")}\n`,
      ...options.files,
    }),
    openLogs: logs.open,
    tellClient: (line) => void events.push(`client ${line}`),
    catchStrayRejections: () => {},
    sessionDeps: () => ({
      pid: 4242,
      uid: 1001,
      registrar: () =>
        Promise.resolve(
          fallbackRegistrar(
            "3a9fd819-59c3-42bc-b0a2-d26304a1eb84",
            balancerPicker(createBalancer(noState, () => 0)),
            { register: () => Promise.resolve(true) },
          ),
        ),
      probe: () => Promise.resolve({ kind: "answered", banner: "SSH-2.0-x", hostKey: KEY }),
      pty: false,
    }),
    isExecutable: () => options.sshInstalled ?? true,
    replaceProcess(handoff) {
      events.push(`exec ${handoff.path}`);
      throw new Error(options.execFails ?? "the fake cannot replace the test process");
    },
  };
  return { platform, events, logs };
}

function run(platform: ReversePlatform, env: Record<string, string>) {
  const output = captureOutput();
  return runReverse({ configPath: "/c.conf" }, platform, {
    output,
    self: "/usr/bin/xferproxy",
    env: (name) => env[name],
  });
}

Deno.test("the hand-off comes after every log line is out; an exec that fails is logged, 255", async () => {
  const { platform, events } = fakePlatform({ execFails: "execve failed: ENOENT" });
  const status = await run(platform, { ...SESSION_ENV, SSH_ORIGINAL_COMMAND: "scp -t /in" });
  assertEquals(status, 255);
  const exec = events.indexOf("exec /usr/bin/ssh");
  assertEquals(events[0], "open /logs");
  assertEquals(events[exec - 1], "close");
  assertEquals(events.slice(1, exec - 1).every((e) => e.startsWith("log ")), true);
  assertMatch(
    events.slice(1, exec - 1).join("\n"),
    /Handing over to ssh for server 198\.18\.2\.2:22/,
  );
  // After the failed exec: the client is told, the reason logged anew, the log closed again.
  assertEquals(events.slice(exec + 1, exec + 3), [
    "client xferproxy: internal error; see the proxy log",
    "open /logs",
  ]);
  assertMatch(events[exec + 3] ?? "", /Cannot hand over to \/usr\/bin\/ssh: execve failed: ENOENT/);
  assertEquals(events.at(-1), "close");
});

Deno.test("a config that cannot load: one line for the client, the reason in syslog, no ssh", async () => {
  const { platform, events, logs } = fakePlatform({ files: { "/c.conf": "<server><rproxy>" } });
  assertEquals(await run(platform, { ...SESSION_ENV, SSH_ORIGINAL_COMMAND: "scp -t /in" }), 255);
  assertEquals(
    events[0],
    "client xferproxy: the proxy configuration is invalid; see the proxy log",
  );
  assertEquals([events[1], events.at(-1)], ["open syslog", "close"]);
  assertMatch(logs.lines().join("\n"), /Session refused: Cannot load config "\/c.conf"/);
  assertEquals(events.some((e) => e.startsWith("exec")), false);
});

Deno.test("without SSH_CONNECTION the session is refused before any config is read", async () => {
  const { platform, events } = fakePlatform({ files: { "/c.conf": new Error("read") as never } });
  assertEquals(await run(platform, { USER: "bear" }), 255);
  assertMatch(events[0] ?? "", /^client xferproxy: .*SSH_CONNECTION/);
  assertEquals(events.some((e) => e.startsWith("exec")), false);
});

Deno.test("a refused command exits 1 with its logs closed, and nothing is executed", async () => {
  const { platform, events, logs } = fakePlatform();
  assertEquals(await run(platform, { ...SESSION_ENV, SSH_ORIGINAL_COMMAND: "rm -rf /" }), 1);
  assertEquals([events[0], events.at(-1)], ["open /logs", "close"]);
  assertMatch(events.find((e) => e.startsWith("client")) ?? "", /not allowed/);
  assertMatch(logs.lines().join("\n"), /rm/);
  assertEquals(events.some((e) => e.startsWith("exec")), false);
});

Deno.test("without /usr/bin/ssh the session ends with 255 and says what to install", async () => {
  const { platform, events, logs } = fakePlatform({ sshInstalled: false });
  assertEquals(await run(platform, { ...SESSION_ENV, SSH_ORIGINAL_COMMAND: "scp -t /in" }), 255);
  assertMatch(logs.lines().join("\n"), /install openssh-client/);
  assertEquals(events.includes("client xferproxy: internal error; see the proxy log"), true);
  assertEquals(events.some((e) => e.startsWith("exec")), false);
});

Deno.test("an error nobody expected: the client gets one line, syslog gets the stack", async () => {
  const { platform, events, logs } = fakePlatform();
  const output = captureOutput();
  const status = await reverseMode.run(
    { configPath: "/c.conf" },
    () =>
      Promise.resolve({
        ...platform,
        catchStrayRejections: () => {
          throw new TypeError("a bug in the session code");
        },
      }),
    { output, self: "/usr/bin/xferproxy", env: (name) => SESSION_ENV[name] },
  );
  assertEquals(status, 255);
  assertEquals(output.stderr, "xferproxy: internal error; see the proxy log\n");
  assertEquals([events[0], events.at(-1)], ["open syslog", "close"]);
  assertMatch(
    logs.lines().join("\n"),
    /Internal error: TypeError: a bug in the session code\\x0a\s+at /,
  );
});
