import { assertEquals } from "../_assert.ts";
import { configFindings } from "../../src/check/audit.ts";
import { checkConfig } from "../../src/check/config.ts";
import { parseConfigText } from "../../src/config/mod.ts";
import { createFakeFs } from "../_fakes/fs.ts";
import { captureOutput } from "../_fakes/output.ts";

const RULES = `<server>
<rproxy>
<enabled>true</enabled>
<shiny/>
<rules>
<rule host_domain="acme.example"><host>198.18.2.2</host><squash_user>acme</squash_user><keyfile>/k</keyfile></rule>
<rule host_domain="globex.example"><host>198.18.2.2</host><squash_user>globex</squash_user><keyfile>/k</keyfile></rule>
</rules>
</rproxy>
</server>`;

Deno.test("configFindings() gives a warning its own fix when the config names one", () => {
  const findings = configFindings(parseConfigText(RULES, "a.conf"));
  assertEquals(
    findings.map((f) => [f.id, f.severity, f.fix]),
    [
      ["config.shiny", "warning", "remove or move the tag"],
      [
        "config.host_domain",
        "warning",
        "never separate partners by host_domain: give each partner their own proxy account and no <squash_user> (each logs in upstream as themselves), or a proxy address only their network reaches",
      ],
      ["config.valid", "info", ""],
    ],
  );
});

/** Forward ports 30000-40000 on every address; a rule receiving on 33001-33010 on line 9. */
const OVERLAP = `<server>
<enable_https>true</enable_https>
<proxy><enabled>true</enabled><authentication>true</authentication><cert_file>/c</cert_file><key_file>/k</key_file>
<port_range_low>30000</port_range_low><port_range_high>40000</port_range_high>
</proxy>
<rproxy>
<enabled>true</enabled>
<rules>
<rule host_ip="198.18.0.1"><host>198.18.2.2</host><keyfile>/k</keyfile><udp_port_reuse>false</udp_port_reuse></rule>
</rules>
</rproxy>
</server>`;

const OVERLAP_MESSAGE =
  `line 4, column 1: the forward proxy's port range 30000-40000 overlaps UDP ports 33001-33010 of <rule> 1 (line 9) on proxy address 198.18.0.1: a forward session can be given a port where a reverse session of the same client address receives FASP, and which of the two its UDP reaches then depends on rule order`;
const OVERLAP_FIX =
  "move <port_range_low>-<port_range_high> outside 33001-33010, or bind the forward proxy (<bind_ip_address>) and <rule> 1 (host_ip) to different addresses";

Deno.test("configFindings() reports a forward range over a rule's UDP ports as config.port_range", () => {
  assertEquals(
    configFindings(parseConfigText(OVERLAP, "a.conf")).map((f) => [f.id, f.severity, f.fix]),
    [["config.port_range", "warning", OVERLAP_FIX], ["config.valid", "info", ""]],
  );
});

Deno.test("checkConfig() prints a problem's own fix after it, and the config still passes", async () => {
  const output = captureOutput();
  const status = await checkConfig("a.conf", createFakeFs({ "a.conf": OVERLAP }), output);
  assertEquals(output.stdout.split("\n"), [
    `Warning: config "a.conf": ${OVERLAP_MESSAGE} (fix: ${OVERLAP_FIX})`,
    `OK: "a.conf" is valid (reverse proxy on, 1 rule; forward proxy on, ports 30000-40000; 1 warning)`,
    "",
  ]);
  assertEquals(status, 0);
});
