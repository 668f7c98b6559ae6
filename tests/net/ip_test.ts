import { assertEquals } from "../_assert.ts";
import { asIpv4, cidrContains, parseCidr, parseIp } from "../../src/net/ip.ts";

Deno.test("parseIp() accepts IPv4 and IPv6 literals in canonical form", async (t) => {
  const cases: Array<[string, string, 4 | 6]> = [
    ["198.18.0.1", "198.18.0.1", 4],
    ["0.0.0.0", "0.0.0.0", 4],
    ["::", "::", 6],
    ["::1", "::1", 6],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1", 6],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 6],
    ["fe80:0:0:0:0:0:0:0", "fe80::", 6],
    ["::ffff:198.18.0.1", "::ffff:c612:1", 6],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", 6],
    ["1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8", 6],
  ];
  for (const [input, text, family] of cases) {
    await t.step(input, () => {
      const ip = parseIp(input);
      assertEquals(ip?.text, text);
      assertEquals(ip?.family, family);
    });
  }
});

Deno.test("parseIp() refuses anything that is not an IP literal", async (t) => {
  const bad = [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.4 ",
    " 1.2.3.4",
    "-1.2.3.4",
    "1.2.3.4\n",
    "a.b.c.d",
    "example.com",
    ":::",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "12345::",
    "fe80::1%eth0",
    "1:2:3:4:5:6:7::8",
    "--help",
    "1.2.3.4;id",
  ];
  for (const input of bad) {
    await t.step(JSON.stringify(input), () => assertEquals(parseIp(input), undefined));
  }
});

Deno.test("parseCidr() keeps the prefix and refuses bad lengths", () => {
  assertEquals(parseCidr("7.7.8.0/24")?.text, "7.7.8.0/24");
  assertEquals(parseCidr("7.7.7.7")?.prefix, 32);
  assertEquals(parseCidr("2001:db8::/32")?.prefix, 32);
  assertEquals(parseCidr("7.7.8.0/33"), undefined);
  assertEquals(parseCidr("::/129"), undefined);
  assertEquals(parseCidr("7.7.8.0/"), undefined);
  assertEquals(parseCidr("7.7.8.0/24/1"), undefined);
  assertEquals(parseCidr("7.7.8.0/+4"), undefined);
});

Deno.test("cidrContains() matches by prefix, including IPv4-mapped IPv6", async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ["7.7.8.0/24", "7.7.8.0", true],
    ["7.7.8.0/24", "7.7.8.255", true],
    ["7.7.8.0/24", "7.7.9.0", false],
    ["7.7.7.7", "7.7.7.7", true],
    ["7.7.7.7", "7.7.7.8", false],
    ["198.18.0.0/15", "198.19.255.1", true],
    ["198.18.0.0/15", "198.20.0.1", false],
    ["0.0.0.0/0", "203.0.113.9", true],
    ["7.7.8.0/24", "::ffff:7.7.8.9", true],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/32", "2001:db9::1", false],
    ["2001:db8::/32", "7.7.8.9", false],
    ["7.7.8.0/25", "7.7.8.128", false],
  ];
  for (const [cidr, ip, expected] of cases) {
    await t.step(`${ip} in ${cidr}`, () => {
      assertEquals(cidrContains(parseCidr(cidr)!, parseIp(ip)!), expected);
    });
  }
});

Deno.test("asIpv4() unwraps only IPv4-mapped addresses", () => {
  assertEquals(asIpv4(parseIp("::ffff:198.18.1.2")!)?.text, "198.18.1.2");
  assertEquals(asIpv4(parseIp("::198.18.1.2")!), undefined);
  assertEquals(asIpv4(parseIp("198.18.1.2")!)?.text, "198.18.1.2");
});
