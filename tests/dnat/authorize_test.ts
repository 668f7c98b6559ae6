import { assertEquals, assertThrows } from "../_assert.ts";
import { authorize, choosePorts, conflicts } from "../../src/dnat/authorize.ts";
import { NotAuthorizedError } from "../../src/dnat/errors.ts";
import type { AuthorizeRequest } from "../../src/dnat/authorize.ts";
import type { DnatSession } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import { parseInline } from "../config/_load.ts";
import { dnatSession, endpoint, target } from "./_build.ts";

const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/k</keyfile></rule>
<rule host_ip="198.18.1.16/28"><hosts><host>198.18.2.2</host><host>198.18.2.3</host></hosts><keyfile>/k</keyfile></rule>
<rule host_ip="198.18.1.40"><host>198.18.2.4</host><keyfile>/k</keyfile><proxy_port>0</proxy_port><udp_port>40001</udp_port><udp_port_reuse>false</udp_port_reuse><udp_port_count>5</udp_port_count></rule>
<rule host_ip="198.18.1.41"><host>198.18.2.4</host><keyfile>/k</keyfile><proxy_port>34000</proxy_port><udp_port_reuse>false</udp_port_reuse><udp_port_count>3</udp_port_count></rule>
<rule host_ip="2001:db8::1"><host>198.18.2.5</host><keyfile>/k</keyfile></rule>
</rules></rproxy></server>`).config!;

const OWNER = { pid: 7, start: 1_800_000_000_000 };

type Request = AuthorizeRequest & { id: string };

function request(extra: Partial<Request> = {}): Request {
  return {
    ...target(),
    id: "3a9fd819-59c3-42bc-b0a2-d26304a1eb84",
    client: parseIp("198.18.1.2")!,
    proxy: parseIp("198.18.1.1")!,
    ...extra,
  };
}

function session(extra: Partial<DnatSession> = {}): DnatSession {
  return dnatSession({ owner: OWNER, proxy: parseIp("198.18.1.17")!, ...extra });
}

Deno.test("authorize() takes the destination from the config, never the caller", () => {
  const { rule, server } = authorize(config, request());
  assertEquals([rule.index, server.ip.text, server.port], [1, "198.18.2.2", 22]);
  const balanced = authorize(
    config,
    request({
      proxy: parseIp("198.18.1.20")!,
      rule: 2,
      host: 1,
      server: endpoint("198.18.2.3:22"),
    }),
  );
  assertEquals(balanced.server.ip.text, "198.18.2.3");
});

Deno.test("authorize() refuses requests the config does not allow", async (t) => {
  const cases: Array<[Partial<Request>, string]> = [
    [{ rule: 9 }, "the config has no rule 9"],
    [{ host: 1 }, "rule 1 has no host 1"],
    [{ proxy: parseIp("198.18.1.99")! }, "proxy address 198.18.1.99 is not covered by rule 1"],
    [
      { server: endpoint("198.18.2.3:22") },
      "host 0 of rule 1 is 198.18.2.2:22, not 198.18.2.3:22 (does the session use another config than a.conf?)",
    ],
    [
      { rule: 5, proxy: parseIp("2001:db8::1")!, server: endpoint("198.18.2.5:22") },
      "client, proxy and internal server must all be IPv4 or all IPv6",
    ],
  ];
  for (const [extra, message] of cases) {
    await t.step(message, () => {
      assertThrows(() => authorize(config, request(extra)), NotAuthorizedError, message);
    });
  }
  const disabled = parseInline(`<server><rproxy><enabled>false</enabled></rproxy></server>`)
    .config!;
  assertThrows(() => authorize(disabled, request()), NotAuthorizedError, "disabled");
});

Deno.test("choosePorts(): the proxy receives on proxy_port, which balanced hosts share", () => {
  const plain = choosePorts(authorize(config, request()), { ...request(), owner: OWNER }, []);
  assertEquals([plain.proxyPort, plain.portCount, plain.serverPort], [33001, 1, 33001]);
  const second = request({
    proxy: parseIp("198.18.1.20")!,
    rule: 2,
    host: 1,
    server: endpoint("198.18.2.3:22"),
  });
  const b = choosePorts(authorize(config, second), { ...second, owner: OWNER }, [plain]);
  assertEquals([b.proxyPort, b.server.text, b.serverPort], [33001, "198.18.2.3", 33001]);
});

Deno.test("choosePorts(): proxy_port 0 without port reuse forwards the server's span as is", () => {
  const r = request({ proxy: parseIp("198.18.1.40")!, rule: 3, server: endpoint("198.18.2.4:22") });
  const s = choosePorts(authorize(config, r), { ...r, owner: OWNER }, []);
  assertEquals([s.proxyPort, s.portCount, s.serverPort], [40001, 5, 40001]);
  // Every session of the rule covers the same span: the server picks the port.
  assertEquals(
    choosePorts(authorize(config, r), { ...r, id: crypto.randomUUID(), owner: OWNER }, [s])
      .proxyPort,
    40001,
  );
});

Deno.test("choosePorts(): a fixed proxy_port without port reuse takes the lowest free slot", () => {
  const r = request({ proxy: parseIp("198.18.1.41")!, rule: 4, server: endpoint("198.18.2.4:22") });
  const authorized = authorize(config, r);
  const taken: DnatSession[] = [];
  for (const expected of [[34000, 33001], [34001, 33002], [34002, 33003]]) {
    const s = choosePorts(
      authorized,
      { ...r, id: crypto.randomUUID(), owner: OWNER },
      taken,
    );
    assertEquals([s.proxyPort, s.serverPort], expected);
    taken.push(s);
  }
  assertThrows(
    () => choosePorts(authorized, { ...r, id: crypto.randomUUID(), owner: OWNER }, taken),
    NotAuthorizedError,
    "no free UDP port for rule 4: every slot from 34000 is in use",
  );
});

Deno.test("conflicts(): only unlearned sessions of the same client and port to another target", () => {
  const candidate = session({ server: parseIp("198.18.2.3")! });
  const toA = session();
  const learned = session({ clientPort: 40000 });
  const sameTarget = session({ server: parseIp("198.18.2.3")! });
  const otherClient = session({ client: parseIp("198.18.1.3")! });
  const otherPort = session({ proxyPort: 33002 });
  const found = conflicts(candidate, [
    { session: toA, filtering: true },
    { session: learned, filtering: true },
    { session: sameTarget, filtering: true },
    { session: otherClient, filtering: true },
    { session: otherPort, filtering: true },
  ]);
  assertEquals(found.map((c) => [c.session.id, c.permanent]), [[toA.id, false]]);
  // Without filtering it will never learn a port: the conflict lasts.
  assertEquals(conflicts(candidate, [{ session: toA, filtering: false }])[0]?.permanent, true);
  // Spans that overlap collide too.
  const span = session({ proxyPort: 33000, portCount: 5, serverPort: 33000 });
  assertEquals(conflicts(candidate, [{ session: span, filtering: true }]).length, 1);
});
