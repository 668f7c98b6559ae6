import { assertEquals } from "../_assert.ts";
import {
  formatEndpoint,
  isHostName,
  parseDomainEndpoint,
  parseIpEndpoint,
  parsePort,
} from "../../src/net/endpoint.ts";

Deno.test("parseIpEndpoint() reads ip[:port] with a default port", async (t) => {
  const cases: Array<[string, string]> = [
    ["10.0.0.10:22", "10.0.0.10:22"],
    ["10.0.0.10", "10.0.0.10:22"],
    ["10.20.103.133:33001", "10.20.103.133:33001"],
    ["[2001:db8::1]:2222", "[2001:db8::1]:2222"],
    ["2001:db8::1", "[2001:db8::1]:22"],
    ["[::1]", "[::1]:22"],
  ];
  for (const [input, expected] of cases) {
    await t.step(input, () => {
      const ep = parseIpEndpoint(input, 22);
      assertEquals(typeof ep === "string" ? ep : formatEndpoint(ep), expected);
    });
  }
});

Deno.test("parseIpEndpoint() explains what is wrong", async (t) => {
  const cases: Array<[string, string]> = [
    [
      "server.example:22",
      `must be an IP address with an optional port (ip[:port]), got "server.example:22"`,
    ],
    ["10.0.0.10:0", `port must be an integer 1-65535, got "0" in "10.0.0.10:0"`],
    ["10.0.0.10:65536", `port must be an integer 1-65535, got "65536" in "10.0.0.10:65536"`],
    ["10.0.0.10:ssh", `port must be an integer 1-65535, got "ssh" in "10.0.0.10:ssh"`],
    ["[10.0.0.10]:22", `brackets are only for IPv6 addresses, got "[10.0.0.10]:22"`],
    ["", `must be an IP address with an optional port (ip[:port]), got ""`],
  ];
  for (const [input, message] of cases) {
    await t.step(input || "(empty)", () => assertEquals(parseIpEndpoint(input, 22), message));
  }
});

Deno.test("parseDomainEndpoint() reads name[:port] and lower-cases the name", () => {
  assertEquals(parseDomainEndpoint("Faspex.Example.com"), { name: "faspex.example.com" });
  assertEquals(parseDomainEndpoint("shares.example.com:33001"), {
    name: "shares.example.com",
    port: 33001,
  });
  assertEquals(typeof parseDomainEndpoint("bad_name.example"), "string");
  assertEquals(typeof parseDomainEndpoint("a.example:1:2"), "string");
  assertEquals(typeof parseDomainEndpoint("a.example:99999"), "string");
});

Deno.test("isHostName() follows RFC 1123 labels", () => {
  assertEquals(isHostName("a-b.example"), true);
  assertEquals(isHostName("-a.example"), false);
  assertEquals(isHostName("a..example"), false);
  assertEquals(isHostName("a".repeat(64) + ".example"), false);
  assertEquals(isHostName("x y"), false);
});

Deno.test("parsePort() accepts 1-65535, and 0 only when asked", () => {
  assertEquals(parsePort("1"), 1);
  assertEquals(parsePort("65535"), 65535);
  assertEquals(parsePort("0"), undefined);
  assertEquals(parsePort("0", true), 0);
  assertEquals(parsePort("+22"), undefined);
  assertEquals(parsePort("22.0"), undefined);
  assertEquals(parsePort("123456"), undefined);
});
