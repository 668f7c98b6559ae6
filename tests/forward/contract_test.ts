import { assertEquals } from "../_assert.ts";
import {
  errorReason,
  parseSessionRequest,
  parseSessionView,
  type SessionView,
} from "../../src/forward/contract.ts";

Deno.test("parseSessionRequest() defaults the ports and says what is wrong in one line", async (t) => {
  const cases: Array<[string, unknown]> = [
    [`{"destination":"Files.Example"}`, {
      destination: "files.example",
      sshPort: 22,
      udpPort: 33001,
    }],
    [`{"destination":"198.19.1.1","ssh_port":2222,"udp_port":"33002"}`, {
      destination: "198.19.1.1",
      sshPort: 2222,
      udpPort: 33002,
    }],
    ["not json", "request body must be JSON: {destination, ssh_port, udp_port}"],
    ["null", "destination must be an IP address or a host name"],
    [`{"destination":"a b"}`, "destination must be an IP address or a host name"],
    [`{"destination":"h.example","ssh_port":0}`, "ssh_port and udp_port must be integers 1-65535"],
    [
      `{"destination":"h.example","udp_port":"22;rm"}`,
      "ssh_port and udp_port must be integers 1-65535",
    ],
  ];
  for (const [text, expected] of cases) {
    await t.step(text, () => assertEquals(parseSessionRequest(text), expected));
  }
});

Deno.test("parseSessionView() takes a whole session and nothing less", () => {
  const view: SessionView = {
    id: "00000000-0000-4000-8000-000000000001",
    user: "alice",
    client: "198.18.30.2",
    destination: "files.example",
    address: "198.19.7.7",
    ssh_port: 22,
    udp_port: 33001,
    proxy_host: "198.18.30.1",
    port: 5000,
    keepalive_interval: 10,
    expires_at: "2027-01-01T00:00:00.000Z",
  };
  assertEquals(parseSessionView(JSON.stringify(view)), view);
  assertEquals(parseSessionView(JSON.stringify({ ...view, port: "5000" })), undefined);
  const { port: _port, ...noPort } = view;
  assertEquals(parseSessionView(JSON.stringify(noPort)), undefined);
  assertEquals(parseSessionView("[]"), undefined);
  assertEquals(parseSessionView("<html>"), undefined);
});

Deno.test("errorReason() reads the error body, or keeps the text", () => {
  assertEquals(errorReason(`{"error":"destination not allowed"}`), "destination not allowed");
  assertEquals(errorReason("Bad Gateway\n"), "Bad Gateway");
  assertEquals(errorReason(`{"status":"ok"}`), `{"status":"ok"}`);
});
