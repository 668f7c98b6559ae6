import { assertEquals } from "../_assert.ts";
import { configFindings } from "../../src/check/audit.ts";
import { parseConfigText } from "../../src/config/mod.ts";

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
