import { assertEquals } from "../_assert.ts";
import { matchRule } from "../../src/reverse/rules.ts";
import { parseIp } from "../../src/net/ip.ts";
import { parseInline } from "../config/_load.ts";

const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule host_domain="faspex.example.com"><host>10.0.0.1</host><keyfile>/k</keyfile></rule>
<rule host_domain="shares.example.com:33001" host_ip="7.7.7.0/24"><host>10.0.0.2</host><keyfile>/k</keyfile></rule>
<rule host_ip="7.7.7.7"><host>10.0.0.3</host><keyfile>/k</keyfile></rule>
<rule host_ip="7.7.8.0/24"><host>10.0.0.4</host><keyfile>/k</keyfile></rule>
<rule host_ip="2001:db8::/64"><host>10.0.0.5</host><keyfile>/k</keyfile></rule>
<rule><host>10.0.0.6</host><keyfile>/k</keyfile></rule>
</rules></rproxy></server>`).config!;
const rules = config.server.rproxy.rules;

function ruleFor(
  proxyIp: string,
  proxyPort = 33001,
  dialled?: { name: string; port?: number },
): number | undefined {
  return matchRule(rules, {
    proxyIp: parseIp(proxyIp)!,
    proxyPort,
    ...(dialled ? { dialled } : {}),
  })?.index;
}

Deno.test("matchRule() takes the first rule whose attributes all match", async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ["host_domain alone", ruleFor("7.7.7.7", 33001, { name: "faspex.example.com" })],
    [
      "domain + ip + port (port reached)",
      ruleFor("7.7.7.9", 33001, { name: "shares.example.com" }),
    ],
    [
      "domain + ip + port (port named)",
      ruleFor("7.7.7.9", 22, { name: "shares.example.com", port: 33001 }),
    ],
    ["domain port mismatch falls through", ruleFor("7.7.7.9", 22, { name: "shares.example.com" })],
    ["domain ip mismatch falls through", ruleFor("7.7.9.9", 33001, { name: "shares.example.com" })],
    ["exact ip", ruleFor("7.7.7.7")],
    ["prefix", ruleFor("7.7.8.200")],
    ["ipv6 prefix", ruleFor("2001:db8::7")],
    ["catch-all", ruleFor("198.18.1.1")],
  ];
  const expected = [1, 2, 2, 6, 6, 3, 4, 5, 6];
  for (const [i, [name, got]] of cases.entries()) {
    await t.step(name, () => assertEquals(got, expected[i]));
  }
});

Deno.test("matchRule() returns undefined when nothing matches", () => {
  const only = rules.filter((r) => r.hostIp);
  assertEquals(matchRule(only, { proxyIp: parseIp("198.18.1.1")!, proxyPort: 22 }), undefined);
});
