import { assertEquals, assertThrows } from "../_assert.ts";
import {
  readSessionInputs,
  requestFromCommand,
  SessionInputError,
} from "../../src/reverse/inputs.ts";
import { UserError } from "../../src/errors.ts";

const env = (values: Record<string, string>) => (name: string) => values[name];
const BASE = { SSH_CONNECTION: "198.18.1.2 50022 198.18.1.1 22", USER: "bear" };

Deno.test("readSessionInputs() reads sshd's variables", () => {
  const inputs = readSessionInputs(
    env({ ...BASE, SSH_ORIGINAL_COMMAND: "scp -t /tmp", XFERPROXY_HOST: "Files.Example:33001" }),
  );
  assertEquals(inputs.user, "bear");
  assertEquals([inputs.clientIp.text, inputs.clientPort, inputs.proxyIp.text, inputs.proxyPort], [
    "198.18.1.2",
    50022,
    "198.18.1.1",
    22,
  ]);
  assertEquals(inputs.dialled, { name: "files.example", port: 33001 });
  assertEquals(inputs.request, { kind: "exec", command: "scp -t /tmp" });
});

Deno.test("readSessionInputs() keeps a bad XFERPROXY_HOST aside instead of matching on it", () => {
  const inputs = readSessionInputs(env({ ...BASE, XFERPROXY_HOST: "bad host;x" }));
  assertEquals(inputs.dialled, undefined);
  assertEquals(inputs.badDialled, "bad host;x");
});

Deno.test("readSessionInputs() refuses what sshd would never send", async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ USER: "bear" }, "SSH_CONNECTION is not set: xferproxy reverse must be run by sshd"],
    [
      { ...BASE, SSH_CONNECTION: "198.18.1.2 50022 198.18.1.1" },
      `SSH_CONNECTION is malformed: "198.18.1.2 50022 198.18.1.1"`,
    ],
    [
      { ...BASE, SSH_CONNECTION: "x 1 198.18.1.1 22" },
      `SSH_CONNECTION is malformed: "x 1 198.18.1.1 22"`,
    ],
    [
      { ...BASE, SSH_CONNECTION: "198.18.1.2 1 198.18.1.1 22 extra" },
      `SSH_CONNECTION is malformed: "198.18.1.2 1 198.18.1.1 22 extra"`,
    ],
    [
      { ...BASE, USER: "../root" },
      `Invalid user name "../root": it holds / or ..`,
    ],
    [
      { SSH_CONNECTION: BASE.SSH_CONNECTION },
      `Invalid user name "": it is empty or over 256 characters`,
    ],
  ];
  for (const [values, message] of cases) {
    await t.step(
      message,
      () => void assertThrows(() => readSessionInputs(env(values)), SessionInputError, message),
    );
  }
});

Deno.test("requestFromCommand() maps sshd's sftp-server line back to the sftp subsystem", async (t) => {
  const cases: Array<[string | undefined, unknown]> = [
    ["/usr/lib/openssh/sftp-server", { kind: "subsystem", name: "sftp" }],
    ["/usr/libexec/openssh/sftp-server -l INFO", { kind: "subsystem", name: "sftp" }],
    ["internal-sftp", { kind: "subsystem", name: "sftp" }],
    ["sftp-server", { kind: "subsystem", name: "sftp" }],
    ["scp -t /x", { kind: "exec", command: "scp -t /x" }],
    ["/usr/lib/openssh/sftp-server; id", {
      kind: "exec",
      command: "/usr/lib/openssh/sftp-server; id",
    }],
    [undefined, { kind: "shell" }],
    ["", { kind: "shell" }],
  ];
  for (const [command, expected] of cases) {
    await t.step(
      String(command),
      () => assertEquals(requestFromCommand(command) as unknown, expected),
    );
  }
});

Deno.test("readSessionInputs() refuses a variable the environment cannot give as the client's input", () => {
  const unreadable = (name: string) => {
    if (name === "SSH_ORIGINAL_COMMAND") throw new UserError(`${name} is not UTF-8 text`);
    return env(BASE)(name);
  };
  assertThrows(
    () => readSessionInputs(unreadable),
    SessionInputError,
    "SSH_ORIGINAL_COMMAND is not UTF-8 text",
  );
});
