import { assertEquals } from "../_assert.ts";
import {
  encodeLine,
  MAX_LINE,
  parseReply,
  parseRequest,
  type ServiceReply,
  type ServiceRequest,
} from "../../src/dnat/service_protocol.ts";
import { endpoint } from "./_build.ts";

const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";

Deno.test("every request a session sends, the service reads back as sent", () => {
  const requests: ServiceRequest[] = [
    { op: "hello" },
    { op: "pick", rule: 2 },
    { op: "failed", rule: 2, host: 1, reason: "No answer from 198.18.2.3:22 within 3000 ms" },
    {
      op: "register",
      rule: 1,
      host: 0,
      server: endpoint("198.18.2.2:22"),
      udp: true,
      user: "Bo.B@corp",
    },
  ];
  for (const request of requests) assertEquals(parseRequest(encodeLine(request)), request);
});

Deno.test("every reply the service sends, the session reads back as sent", () => {
  const replies: ServiceReply[] = [
    { op: "hello", session: ID },
    { op: "hello", session: ID, draining: true },
    { op: "pick", order: [1, 0], skipped: [{ index: 2, until: 1_800_000_120_000 }] },
    { op: "noted" },
    { event: "registered", session: ID },
    {
      event: "installed",
      session: ID,
      proxy: "198.18.1.1:33001",
      server: "198.18.2.2:33001",
      filtering: true,
    },
    { event: "refused", reason: "process 900 was not started by sshd" },
    { event: "failed", reason: "net.ipv4.ip_forward is 0" },
  ];
  for (const reply of replies) assertEquals(parseReply(encodeLine(reply)), reply);
});

Deno.test("the service takes nothing but typed, bounded requests", async (t) => {
  const register = {
    op: "register" as const,
    rule: 1,
    host: 0,
    server: "198.18.2.2:22",
    udp: true,
    user: "a",
  };
  // A session cannot name who it is: such fields are no part of any request and never passed on.
  const forged = parseRequest(JSON.stringify({ ...register, owner: 1, client: "6.6.6.6" }));
  assertEquals(forged, { ...register, server: endpoint("198.18.2.2:22") });
  const refused: Array<[string, unknown]> = [
    ["a rule that is not an index", { op: "pick", rule: "1; flush" }],
    ["a server that is no ip:port", { ...register, server: "evil.example:22" }],
    ["udp that is not a boolean", { ...register, udp: "yes" }],
    ["an endless reason", { op: "failed", rule: 1, host: 0, reason: "x".repeat(600) }],
    ["an unknown op", { op: "reap", all: true }],
    ["an array", [1, 2]],
  ];
  for (const [name, value] of refused) {
    await t.step(name, () => assertEquals(parseRequest(JSON.stringify(value)), undefined));
  }
  assertEquals(parseRequest(`{"op":"hello","pad":"${"x".repeat(MAX_LINE)}"}`), undefined);
  assertEquals(parseReply(JSON.stringify({ op: "hello", session: "../../x" })), undefined);
});
