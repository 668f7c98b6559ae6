import { assertEquals } from "../_assert.ts";
import { chooseOutputs, startedBySystemd } from "../../src/log/mod.ts";

Deno.test("chooseOutputs(): sessions log to the file or syslog; daemons add stderr, once under systemd", async (t) => {
  const cases: Array<[string, Parameters<typeof chooseOutputs>[0], string]> = [
    ["a session, no directory", { directory: false, stderr: false, systemd: false }, "syslog"],
    ["a session, a directory", { directory: true, stderr: false, systemd: false }, "file"],
    [
      "a session whose file cannot be opened",
      { directory: true, stderr: false, systemd: false, fileFailed: true },
      "syslog",
    ],
    [
      "a daemon by hand, no directory",
      { directory: false, stderr: true, systemd: false },
      "syslog stderr",
    ],
    [
      "a daemon by hand, a directory",
      { directory: true, stderr: true, systemd: false },
      "file stderr",
    ],
    [
      "a daemon under systemd, no directory",
      { directory: false, stderr: true, systemd: true },
      "stderr",
    ],
    [
      "a daemon under systemd, a directory",
      { directory: true, stderr: true, systemd: true },
      "file",
    ],
    [
      "a daemon under systemd whose file cannot be opened",
      { directory: true, stderr: true, systemd: true, fileFailed: true },
      "stderr",
    ],
  ];
  for (const [name, options, expected] of cases) {
    await t.step(name, () => {
      const choice = chooseOutputs(options);
      const chosen = (["file", "syslog", "stderr"] as const).filter((k) => choice[k]).join(" ");
      assertEquals(chosen, expected);
    });
  }
});

Deno.test("startedBySystemd() looks at what systemd sets", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assertEquals(startedBySystemd(env({})), false);
  assertEquals(startedBySystemd(env({ INVOCATION_ID: "abc" })), true);
  assertEquals(startedBySystemd(env({ JOURNAL_STREAM: "8:1234" })), true);
});
