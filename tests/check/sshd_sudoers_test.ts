import { assertEquals } from "../_assert.ts";
import {
  effectiveValue,
  globalValue,
  globalValues,
  parseSshdConfig,
  proxyBlocks,
} from "../../src/check/sshd_config.ts";
import { summary } from "../../src/check/findings.ts";
import { acceptsMoreThanHost } from "../../src/check/sshd.ts";

const SSHD = `
# comment
Port 33001
Port 22
PasswordAuthentication no
passwordauthentication yes
Include /etc/ssh/sshd_config.d/*.conf
Match Group xferproxy,partners
  ForceCommand /usr/local/bin/xferproxy reverse --config /etc/xferproxy/aspera.conf
  DisableForwarding yes
Match all
PermitRootLogin no
`;

Deno.test("parseSshdConfig() reads keywords case-insensitively, first value wins, Match blocks end at Match all", () => {
  const config = parseSshdConfig(
    SSHD,
    (p) => (p.endsWith("*.conf") ? ["AcceptEnv XFERPROXY_HOST LANG"] : []),
  );
  assertEquals(globalValues(config, "port"), ["33001", "22"]);
  assertEquals(globalValue(config, "passwordauthentication"), ["no"]);
  assertEquals(globalValue(config, "permitrootlogin"), ["no"]);
  assertEquals(globalValue(config, "acceptenv"), ["XFERPROXY_HOST", "LANG"]);
  const [block] = proxyBlocks(config);
  assertEquals(block?.groups, ["xferproxy", "partners"]);
  assertEquals(effectiveValue(config, block, "disableforwarding"), "yes");
  assertEquals(effectiveValue(config, block, "passwordauthentication"), "no");
});

Deno.test("proxyBlocks() ignores ForceCommands that do not run xferproxy reverse", () => {
  const config = parseSshdConfig(
    "Match User backup\n  ForceCommand /usr/bin/rsync --server\nMatch User x\n  ForceCommand xferproxy-old check\n",
  );
  assertEquals(proxyBlocks(config), []);
});

Deno.test("summary() counts errors and warnings", () => {
  assertEquals(summary([]), "0 errors, 0 warnings");
  assertEquals(
    summary([{ id: "a", severity: "error", message: "", fix: "" }, {
      id: "b",
      severity: "warning",
      message: "",
      fix: "",
    }]),
    "1 error, 1 warning",
  );
});

Deno.test("acceptsMoreThanHost() flags AcceptEnv patterns that let clients set other xferproxy variables", async (t) => {
  const cases: Array<[string, boolean]> = [
    ["XFERPROXY_HOST", false],
    ["LANG", false],
    ["LC_*", false],
    ["XFERPROXY_HOS?", false],
    ["XFERPROXY_*", true],
    ["XFER*", true],
    ["*", true],
    ["*_CONFIG", true],
    ["XFERPROXY_CONFIG", true],
    ["XFERPROXY_BI?", true],
  ];
  for (const [pattern, flagged] of cases) {
    await t.step(pattern, () => assertEquals(acceptsMoreThanHost(pattern), flagged));
  }
});
