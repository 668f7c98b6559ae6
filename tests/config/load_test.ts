import { assertEquals, assertRejects } from "../_assert.ts";
import { ConfigError, loadConfig, readConfigReport } from "../../src/config/mod.ts";
import { createFakeFs } from "../_fakes/fs.ts";

Deno.test("loadConfig() names the file, line, column and tag of the first error", async () => {
  const fs = createFakeFs({
    "a.conf":
      `<server>\n<rproxy>\n<rules>\n<rule>\n<host>198.18.2.2</host>\n<keyfile>/k</keyfile>\n<proxy_port>abc</proxy_port>\n</rule>\n</rules>\n</rproxy>\n</server>`,
  });
  const error = await assertRejects(() => loadConfig("a.conf", fs), ConfigError);
  assertEquals(
    error.message,
    `Cannot load config "a.conf": line 7, column 1: <proxy_port> must be an integer 0-65535, got "abc"`,
  );
  assertEquals(error.report.problems.length, 1);
});

Deno.test("loadConfig() returns warnings alongside a usable config", async () => {
  const fs = createFakeFs({ "a.conf": `<server><shiny/></server>` });
  const { config, warnings } = await loadConfig("a.conf", fs);
  assertEquals(config.source, "a.conf");
  assertEquals(warnings.map((w) => w.message), ["unknown tag <shiny> in <server> (ignored)"]);
});

Deno.test("loadConfig() explains files it cannot read", async (t) => {
  const cases: Array<[string, Error | undefined, string]> = [
    [
      "missing",
      undefined,
      `Cannot load config "/etc/x.conf": file not found (create it, or pass --config PATH or set XFERPROXY_CONFIG)`,
    ],
    [
      "unreadable",
      new Deno.errors.PermissionDenied("EACCES"),
      `Cannot load config "/etc/x.conf": permission denied (check the file's owner and mode)`,
    ],
    [
      "directory",
      new Deno.errors.IsADirectory("EISDIR"),
      `Cannot load config "/etc/x.conf": is a directory, not a file`,
    ],
    [
      "not permitted",
      new Deno.errors.NotCapable("read"),
      `Cannot load config "/etc/x.conf": reading it is not permitted in this mode`,
    ],
  ];
  for (const [name, failure, message] of cases) {
    await t.step(name, async () => {
      const fs = createFakeFs(failure ? { "/etc/x.conf": failure } : {});
      const error = await assertRejects(() => loadConfig("/etc/x.conf", fs), ConfigError);
      assertEquals(error.message, message);
    });
  }
});

Deno.test("readConfigReport() reports malformed XML as fatal with its position", async () => {
  const fs = createFakeFs({ "a.conf": `<server>\n  <rproxy>\n</server>` });
  const report = await readConfigReport("a.conf", fs);
  assertEquals(report.config, undefined);
  assertEquals(
    report.fatal,
    "line 3, column 1: malformed XML: Expected closing tag 'rproxy' (opened in line 2, col 3) instead of closing tag 'server'",
  );
});
