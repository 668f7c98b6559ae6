import { assertEquals, assertThrows } from "../_assert.ts";
import { answerTo, connectionRequest } from "../../src/dnat/conntrack_netlink.ts";
import { parseIp } from "../../src/net/ip.ts";

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
const fromHex = (text: string) => Uint8Array.from(text.trim().split(/\s+/), (h) => parseInt(h, 16));

const V4 = {
  client: { ip: parseIp("198.18.1.2")!, port: 50123 },
  proxy: { ip: parseIp("198.18.1.1")!, port: 22 },
};

Deno.test("connectionRequest() asks ctnetlink for the client's connection by its tuple", () => {
  assertEquals(
    hex(connectionRequest(V4, 7)),
    [
      // nlmsghdr: 72 bytes, IPCTNL_MSG_CT_GET, NLM_F_REQUEST, seq 7, to the kernel
      "48 00 00 00 01 01 01 00 07 00 00 00 00 00 00 00",
      // nfgenmsg: AF_INET, version 0, res_id 0
      "02 00 00 00",
      // CTA_TUPLE_ORIG { CTA_TUPLE_IP { src, dst } CTA_TUPLE_PROTO { tcp, sport, dport } }
      "34 00 01 80",
      "14 00 01 80 08 00 01 00 c6 12 01 02 08 00 02 00 c6 12 01 01",
      "1c 00 02 80 05 00 01 00 06 00 00 00 06 00 02 00 c3 cb 00 00 06 00 03 00 00 16 00 00",
    ].join(" "),
  );
});

Deno.test("connectionRequest() names IPv6 addresses with their own attributes", () => {
  const request = connectionRequest({
    client: { ip: parseIp("2001:db8::2")!, port: 50123 },
    proxy: { ip: parseIp("2001:db8::1")!, port: 22 },
  }, 1);
  assertEquals(request[16], 10); // AF_INET6
  // CTA_TUPLE_IP holds CTA_IP_V6_SRC (3) and CTA_IP_V6_DST (4), 16 bytes each.
  assertEquals(hex(request.subarray(24, 32)), "2c 00 01 80 14 00 03 00");
  assertEquals(hex(request.subarray(48, 52)), "14 00 04 00");
  assertEquals(request.length, 16 + 4 + 4 + 44 + 28);
});

/** One answer message of type `type` and seq `seq` around `body`. */
function message(type: number, seq: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, out.length, true);
  view.setUint16(4, type, true);
  view.setUint32(8, seq, true);
  out.set(body, 16);
  return out;
}

/** An IPCTNL_MSG_CT_NEW answer: TIME_WAIT, 12 packets of 10744 bytes in, 9 of 1024 back. */
const ANSWER_BODY = fromHex(`
  02 00 00 00
  10 00 04 80 0c 00 01 80 05 00 01 00 07 00 00 00
  1c 00 09 80 0c 00 01 00 00 00 00 00 00 00 00 0c 0c 00 02 00 00 00 00 00 00 00 29 f8
  1c 00 0a 80 0c 00 01 00 00 00 00 00 00 00 00 09 0c 00 02 00 00 00 00 00 00 00 04 00
`);

Deno.test("answerTo() reads the connection's state and both directions' counters", () => {
  assertEquals(answerTo(message(0x0100, 7, ANSWER_BODY), 7), {
    connection: {
      state: "TIME_WAIT",
      original: { packets: 12, bytes: 10744 },
      reply: { packets: 9, bytes: 1024 },
    },
  });
});

Deno.test("answerTo() skips what answers another request", () => {
  assertEquals(answerTo(message(0x0100, 6, ANSWER_BODY), 7), undefined);
});

Deno.test("answerTo() says conntrack knows no such connection, and throws on other errors", () => {
  const error = (errno: number) => {
    const body = new Uint8Array(20);
    new DataView(body.buffer).setInt32(0, -errno, true);
    return message(2, 7, body);
  };
  assertEquals(answerTo(error(2), 7), { connection: undefined });
  assertThrows(() => answerTo(error(1), 7), Error, "errno 1");
});

Deno.test("answerTo() counts nothing for a connection conntrack does not count (accounting off)", () => {
  // Only the protocol info: no CTA_COUNTERS_*.
  assertEquals(answerTo(message(0x0100, 7, ANSWER_BODY.subarray(0, 20)), 7), {
    connection: undefined,
  });
});

Deno.test("answerTo() refuses bytes cut short", () => {
  const whole = message(0x0100, 7, ANSWER_BODY);
  assertThrows(() => answerTo(whole.subarray(0, whole.length - 8), 7), Error, "cut short");
  const broken = whole.slice();
  broken[20] = 0xff; // the first attribute claims more than there is
  assertThrows(() => answerTo(broken, 7), Error, "broken attribute");
});
