import { assertEquals, assertThrows } from "../_assert.ts";
import {
  type AddRequest,
  authorize,
  choosePorts,
  NotAuthorizedError,
} from "../../src/dnat/authorize.ts";
import type { InstalledSession } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import { parseInline } from "../config/_load.ts";

const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/k</keyfile></rule>
<rule host_ip="198.18.1.16/28"><hosts><host>198.18.2.2</host><host>198.18.2.3</host></hosts><keyfile>/k</keyfile><udp_port_reuse>false</udp_port_reuse></rule>
<rule host_ip="198.18.1.40"><host>198.18.2.4</host><keyfile>/k</keyfile><proxy_port>0</proxy_port><udp_port>40001</udp_port></rule>
<rule host_ip="2001:db8::1"><host>198.18.2.5</host><keyfile>/k</keyfile></rule>
</rules></rproxy></server>`).config!;

function request(extra: Partial<AddRequest> = {}): AddRequest {
  return {
    id: "3a9fd819-59c3-42bc-b0a2-d26304a1eb84",
    owner: 7,
    client: parseIp("198.18.1.2")!,
    proxy: parseIp("198.18.1.1")!,
    rule: 1,
    host: 0,
    ...extra,
  };
}

function installed(
  proxy: string,
  proxyPort: number,
  server: string,
  serverPort: number,
): InstalledSession {
  return {
    id: crypto.randomUUID(),
    owner: 1,
    client: "198.18.1.9",
    proxy,
    proxyPort,
    server,
    serverPort,
  };
}

Deno.test("authorize() takes the destination from the config, never the caller", () => {
  const ok = authorize(config, request());
  assertEquals([ok.rule.index, ok.server.text], [1, "198.18.2.2"]);
  assertEquals(
    authorize(config, request({ rule: 2, host: 1, proxy: parseIp("198.18.1.17")! })).server.text,
    "198.18.2.3",
  );
});

Deno.test("authorize() refuses requests the config does not allow", async (t) => {
  const cases: Array<[Partial<AddRequest>, string]> = [
    [{ rule: 9 }, "the config has no rule 9"],
    [{ host: 1 }, "rule 1 has no host 1"],
    [
      { proxy: parseIp("198.18.1.99")! },
      "proxy address 198.18.1.99 is not covered by rule 1 (198.18.1.1/32)",
    ],
    [
      { rule: 4, proxy: parseIp("2001:db8::1")! },
      "client, proxy and internal server must all be IPv4 or all IPv6",
    ],
  ];
  for (const [extra, message] of cases) {
    await t.step(
      message,
      () => void assertThrows(() => authorize(config, request(extra)), NotAuthorizedError, message),
    );
  }
  const disabled = parseInline(
    `<server><rproxy><rules><rule><host>198.18.2.2</host></rule></rules></rproxy></server>`,
  ).config!;
  assertThrows(
    () => authorize(disabled, request()),
    NotAuthorizedError,
    "the reverse proxy is disabled in the config",
  );
});

Deno.test("choosePorts() maps host i to proxy_port + i, and 0 to the server's port", () => {
  const alt = request({ rule: 2, host: 1, proxy: parseIp("198.18.1.17")! });
  const s = choosePorts(authorize(config, alt), alt, []);
  assertEquals([s.proxyPort, s.server.text, s.serverPort], [33002, "198.18.2.3", 33001]);
  const zero = request({ rule: 3, proxy: parseIp("198.18.1.40")! });
  const z = choosePorts(authorize(config, zero), zero, []);
  assertEquals([z.proxyPort, z.serverPort], [40001, 40001]);
  // udp_port_reuse true: concurrent sessions share the port.
  const one = request();
  assertEquals(
    choosePorts(authorize(config, one), one, [installed("198.18.1.1", 33001, "198.18.2.2", 33001)])
      .proxyPort,
    33001,
  );
});

Deno.test("choosePorts() with udp_port_reuse false takes the lowest slot free on both sides", () => {
  const req = request({ rule: 2, host: 0, proxy: parseIp("198.18.1.17")! });
  const auth = authorize(config, req);
  const pick = (existing: InstalledSession[]) => {
    const s = choosePorts(auth, req, existing);
    return [s.proxyPort, s.serverPort];
  };
  assertEquals(pick([]), [33001, 33001]);
  assertEquals(pick([installed("198.18.1.17", 33001, "198.18.2.2", 33001)]), [33002, 33002]);
  // Slot 1 is free on the proxy but its server port is taken by a session of another address.
  assertEquals(
    pick([
      installed("198.18.1.17", 33001, "198.18.2.2", 33001),
      installed("198.18.1.18", 33010, "198.18.2.2", 33002),
    ]),
    [33003, 33003],
  );
  // The request's own id never blocks itself.
  assertEquals(pick([{ ...installed("198.18.1.17", 33001, "198.18.2.2", 33001), id: req.id }]), [
    33001,
    33001,
  ]);
  const full = Array.from(
    { length: 1000 },
    (_, k) => installed("198.18.1.17", 33001 + k, "198.18.2.9", 1),
  );
  assertThrows(
    () => choosePorts(auth, req, full),
    NotAuthorizedError,
    "no free UDP port for rule 2",
  );
});
