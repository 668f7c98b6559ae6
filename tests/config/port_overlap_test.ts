/**
 * The forward port range against the rules' UDP ports: overlapping ports on a proxy address both
 * receive on, and nothing else.
 */
import { assertEquals, assertOk } from "../_assert.ts";
import {
  type ForwardPorts,
  forwardReverseOverlaps,
  type RulePorts,
  ruleUdpSpan,
} from "../../src/config/port_overlap.ts";
import { parseCidr, parseIp } from "../../src/net/ip.ts";

/** The forward proxy on `bind` with ports `low`-`high`. */
function forward(bind: string, low: number, high: number): ForwardPorts {
  const bindIpAddress = parseIp(bind);
  assertOk(bindIpAddress);
  return { bindIpAddress, portRangeLow: low, portRangeHigh: high };
}

/** Rule `index` on 33001 with reuse, unless `ports` says otherwise; host_ip when given. */
function rule(
  index: number,
  hostIp?: string,
  ports: Partial<Pick<RulePorts, "proxyPort" | "udpPort" | "udpPortReuse" | "udpPortCount">> = {},
): RulePorts {
  const cidr = hostIp === undefined ? undefined : parseCidr(hostIp);
  if (hostIp !== undefined) assertOk(cidr);
  return {
    index,
    ...(cidr ? { hostIp: cidr } : {}),
    proxyPort: 0,
    udpPort: 33001,
    udpPortReuse: true,
    udpPortCount: 10,
    ...ports,
  };
}

/** What the overlaps say: rule index, its span, where. */
function overlaps(f: ForwardPorts, rules: RulePorts[]): string[] {
  return forwardReverseOverlaps(f, rules).map((o) =>
    `${o.rule.index} ${o.span.low}-${o.span.high} ${o.where ?? "*"}`
  );
}

const SPAN = { udpPortReuse: false, udpPortCount: 10 } as const;

/** A case: its name, the forward proxy, the rules, and the overlaps expected. */
type Case = [string, ForwardPorts, RulePorts[], string[]];

/** Runs each case as a step. */
async function steps(t: Deno.TestContext, cases: readonly Case[]): Promise<void> {
  for (const [name, f, rules, expected] of cases) {
    await t.step(name, () => assertEquals(overlaps(f, rules), expected));
  }
}

Deno.test("ruleUdpSpan() is proxy_port, else udp_port, across udp_port_count without reuse", async (t) => {
  const cases: Array<[string, RulePorts, [number, number]]> = [
    ["the server's port", rule(1), [33001, 33001]],
    ["a fixed proxy port", rule(1, undefined, { proxyPort: 34000 }), [34000, 34000]],
    ["the server's span", rule(1, undefined, SPAN), [33001, 33010]],
    ["a fixed proxy port's span", rule(1, undefined, { ...SPAN, proxyPort: 34000 }), [
      34000,
      34009,
    ]],
  ];
  for (const [name, r, [low, high]] of cases) {
    await t.step(name, () => assertEquals(ruleUdpSpan(r), { low, high }));
  }
});

Deno.test("forwardReverseOverlaps() finds a forward range over a rule's span on its address", async (t) => {
  const cases: Case[] = [
    [
      "overlapping the span's last port",
      forward("198.18.0.1", 33010, 34000),
      [rule(1, "198.18.0.1", SPAN)],
      ["1 33001-33010 198.18.0.1"],
    ],
    [
      "overlapping its first port",
      forward("198.18.0.1", 30000, 33001),
      [rule(1, "198.18.0.1", SPAN)],
      ["1 33001-33010 198.18.0.1"],
    ],
    [
      "inside the span",
      forward("198.18.0.1", 33003, 33004),
      [rule(1, "198.18.0.1", SPAN)],
      ["1 33001-33010 198.18.0.1"],
    ],
    [
      "a fixed proxy port",
      forward("198.18.0.1", 5000, 40000),
      [rule(1, "198.18.0.1", { proxyPort: 34000 })],
      ["1 34000-34000 198.18.0.1"],
    ],
    ["adjacent below", forward("198.18.0.1", 5000, 33000), [rule(1, "198.18.0.1", SPAN)], []],
    ["adjacent above", forward("198.18.0.1", 33011, 40000), [rule(1, "198.18.0.1", SPAN)], []],
    [
      "adjacent to a fixed proxy port (the server's port inside the range is not received on)",
      forward("198.18.0.1", 33001, 33999),
      [rule(1, "198.18.0.1", { proxyPort: 34000 })],
      [],
    ],
    [
      "different proxy addresses",
      forward("198.18.0.1", 30000, 40000),
      [rule(1, "198.18.0.2", SPAN)],
      [],
    ],
    [
      "the forward address outside the rule's network",
      forward("198.18.1.1", 30000, 40000),
      [rule(1, "198.18.0.0/24", SPAN)],
      [],
    ],
    [
      "the forward address inside the rule's network",
      forward("198.18.0.77", 30000, 40000),
      [rule(1, "198.18.0.0/24", SPAN)],
      ["1 33001-33010 198.18.0.77"],
    ],
    [
      "the rule unbound (no host_ip)",
      forward("198.18.0.1", 30000, 40000),
      [rule(1, undefined, SPAN)],
      ["1 33001-33010 198.18.0.1"],
    ],
    [
      "the forward proxy unbound (0.0.0.0)",
      forward("0.0.0.0", 30000, 40000),
      [rule(1, "198.18.0.2", SPAN)],
      ["1 33001-33010 198.18.0.2"],
    ],
    [
      "the forward proxy unbound (::), the rule on IPv4",
      forward("::", 30000, 40000),
      [rule(1, "198.18.0.2")],
      ["1 33001-33001 198.18.0.2"],
    ],
    [
      "both unbound",
      forward("0.0.0.0", 30000, 40000),
      [rule(1, undefined, SPAN)],
      ["1 33001-33010 *"],
    ],
    [
      "unbound, but the ports apart",
      forward("0.0.0.0", 5000, 10000),
      [rule(1, undefined, SPAN)],
      [],
    ],
  ];
  await steps(t, cases);
});

Deno.test("forwardReverseOverlaps() compares IPv6 proxy addresses and never across families", async (t) => {
  const cases: Case[] = [
    [
      "the same IPv6 address",
      forward("2001:db8::1", 33000, 33005),
      [rule(1, "2001:db8::1", SPAN)],
      ["1 33001-33010 2001:db8::1"],
    ],
    [
      "inside the rule's IPv6 network",
      forward("2001:db8::1", 33000, 33005),
      [rule(1, "2001:db8::/64", SPAN)],
      ["1 33001-33010 2001:db8::1"],
    ],
    [
      "another IPv6 network",
      forward("2001:db8:1::1", 33000, 33005),
      [rule(1, "2001:db8::/64", SPAN)],
      [],
    ],
    [
      "the forward proxy on IPv6, the rule on IPv4",
      forward("2001:db8::1", 33000, 33005),
      [rule(1, "198.18.0.0/15", SPAN)],
      [],
    ],
    [
      "the forward proxy on IPv4, the rule on IPv6",
      forward("198.18.0.1", 33000, 33005),
      [rule(1, "2001:db8::/32", SPAN)],
      [],
    ],
    [
      "the forward proxy unbound, the rule on IPv6",
      forward("0.0.0.0", 33000, 33005),
      [rule(1, "2001:db8::/64", SPAN)],
      ["1 33001-33010 2001:db8::/64"],
    ],
  ];
  await steps(t, cases);
});

Deno.test("forwardReverseOverlaps() names every rule it overlaps, in rule order", () => {
  const rules = [
    rule(1, "198.18.0.1", SPAN),
    rule(2, "198.18.0.2", { proxyPort: 34000 }),
    rule(3, "198.18.0.1", { udpPort: 40001 }),
    rule(4, undefined, { ...SPAN, udpPort: 35000 }),
    rule(5, "198.18.0.0/16", { udpPort: 33500 }),
  ];
  assertEquals(overlaps(forward("198.18.0.1", 33005, 36000), rules), [
    "1 33001-33010 198.18.0.1",
    "4 35000-35009 198.18.0.1",
    "5 33500-33500 198.18.0.1",
  ]);
  assertEquals(overlaps(forward("0.0.0.0", 33005, 36000), rules), [
    "1 33001-33010 198.18.0.1",
    "2 34000-34000 198.18.0.2",
    "4 35000-35009 *",
    "5 33500-33500 198.18.0.0/16",
  ]);
});
