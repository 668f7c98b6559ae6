import { assertEquals } from "../_assert.ts";
import { headEnd, parseHead, type Refusal, responseHead } from "../../src/forward/http_wire.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("headEnd() finds the blank line, and only a complete one", () => {
  assertEquals(headEnd(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody")), 27);
  assertEquals(headEnd(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r")), -1);
  assertEquals(headEnd(bytes("")), -1);
});

Deno.test("parseHead() reads method, target, headers and the body length", () => {
  assertEquals(
    parseHead("POST /v1/sessions HTTP/1.1\r\nHost: p\r\nContent-Length: 12\r\nX-A:  b ", 100),
    {
      method: "POST",
      target: "/v1/sessions",
      headers: [["host", "p"], ["content-length", "12"], ["x-a", "b"]],
      contentLength: 12,
    },
  );
});

Deno.test("parseHead() refuses what the API never needs, with the right status", async (t) => {
  const cases: Array<[string, Refusal["status"], string]> = [
    ["GET / HTTP/1.1 x", 400, "malformed request line"],
    ["GET", 400, "malformed request line"],
    ["G{T / HTTP/1.1", 400, "malformed request line"],
    ["GET / HTTP/2", 505, "only HTTP/1.0 and HTTP/1.1"],
    ["GET http://evil/ HTTP/1.1", 400, "the target must be a path"],
    ["GET / HTTP/1.1\r\nno colon", 400, "malformed header line"],
    ["GET / HTTP/1.1\r\nX: a\u0000b", 400, "malformed header line"],
    [
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked",
      501,
      "chunked bodies are not accepted; send Content-Length",
    ],
    [
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2",
      400,
      "more than one Content-Length",
    ],
    ["POST / HTTP/1.1\r\nContent-Length: -1", 400, "malformed Content-Length"],
    ["POST / HTTP/1.1\r\nContent-Length: 101", 413, "body over 100 bytes"],
  ];
  for (const [head, status, message] of cases) {
    await t.step(
      JSON.stringify(head),
      () => assertEquals(parseHead(head, 100), { status, message }),
    );
  }
});

Deno.test("responseHead() sets the length and always closes, whatever the handler said", () => {
  assertEquals(
    responseHead(
      429,
      [["retry-after", "2"], ["connection", "keep-alive"], ["content-length", "9"]],
      3,
    ),
    "HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-length: 3\r\nconnection: close\r\n\r\n",
  );
});
