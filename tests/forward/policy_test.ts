import { assertEquals, assertMatch } from "../_assert.ts";
import { carriedIpv4, checkDestination } from "../../src/forward/policy.ts";
import { parseCidr, parseIp } from "../../src/net/ip.ts";

const OWN = [parseCidr("2001:db8:30::/64")!];

Deno.test("checkDestination() judges IPv6 forms that carry an IPv4 address by that address", async (t) => {
  const cases: Array<[string, RegExp]> = [
    ["::127.0.0.1", /127\.0\.0\.1 is in 127\.0\.0\.0\/8/],
    ["::ffff:10.0.0.1", /10\.0\.0\.1 is in 10\.0\.0\.0\/8/],
    ["64:ff9b::7f00:1", /127\.0\.0\.1 is in 127\.0\.0\.0\/8/],
    ["64:ff9b:1::a00:1", /10\.0\.0\.1 is in 10\.0\.0\.0\/8/],
    ["2002:c0a8:0101::1", /192\.168\.1\.1 is in 192\.168\.0\.0\/16/],
    ["fec0::1", /fec0::\/10/],
    ["::1", /::1\/128/],
    ["2001:db8:30::9", /2001:db8:30::\/64/],
  ];
  for (const [destination, reason] of cases) {
    await t.step(destination, () => {
      const verdict = checkDestination({
        requested: destination,
        address: parseIp(destination)!,
        allow: ["*", "::/1", "8000::/1"],
        own: OWN,
      });
      assertEquals(verdict.ok, false);
      if (!verdict.ok) assertMatch(verdict.reason, reason);
    });
  }
  await t.step("a public IPv4 inside 6to4 or NAT64 is public", () => {
    for (const destination of ["2002:c633:6401::1", "64:ff9b::c633:6401"]) {
      assertEquals(
        checkDestination({
          requested: destination,
          address: parseIp(destination)!,
          allow: ["*"],
          own: OWN,
        }),
        { ok: true },
      );
    }
  });
});

Deno.test("carriedIpv4() finds the IPv4 address of mapped, compatible, NAT64 and 6to4 forms only", () => {
  const carried = (text: string) => carriedIpv4(parseIp(text)!)?.text;
  assertEquals(carried("::ffff:198.51.100.1"), "198.51.100.1");
  assertEquals(carried("::198.51.100.1"), "198.51.100.1");
  assertEquals(carried("64:ff9b::c633:6401"), "198.51.100.1");
  assertEquals(carried("2002:c633:6401:5::1"), "198.51.100.1");
  assertEquals(carried("::"), undefined);
  assertEquals(carried("::1"), undefined);
  assertEquals(carried("2001:db8::1"), undefined);
});
