import { assertEquals } from "../_assert.ts";
import { lineReader } from "../../src/platform/thin_session.ts";
import { MAX_DECIDE_LINE } from "../../src/reverse/decide_protocol.ts";

/** A connection that hands out `chunks` one read at a time, then hangs (or ends). */
function conn(chunks: string[], then: "hang" | "end") {
  const encoder = new TextEncoder();
  return {
    read(buffer: Uint8Array): Promise<number | null> {
      const chunk = chunks.shift();
      if (chunk === undefined) {
        return then === "end" ? Promise.resolve(null) : new Promise(() => {});
      }
      const bytes = encoder.encode(chunk);
      buffer.set(bytes);
      return Promise.resolve(bytes.length);
    },
  };
}

Deno.test("the service's lines come whole, however the reads split them", async () => {
  const next = lineReader(conn(['{"op":"re', 'ad"}\n{"op":"dec', 'ided"}\n'], "end"), 5000);
  assertEquals(await next(), '{"op":"read"}');
  assertEquals(await next(), '{"op":"decided"}');
  assertEquals(await next(), undefined);
});

Deno.test("a service that says nothing more is given up on at the time limit", async () => {
  const started = Date.now();
  const next = lineReader(conn(['{"op":"read"}\n', '{"op":"deci'], "hang"), 50);
  assertEquals(await next(), '{"op":"read"}');
  assertEquals(await next(), undefined);
  assertEquals(Date.now() - started < 5000, true);
});

Deno.test("a line longer than any reply is refused, not buffered without end", async () => {
  const long = "x".repeat(60000);
  const chunks = Array.from({ length: Math.ceil(MAX_DECIDE_LINE / 60000) + 2 }, () => long);
  assertEquals(await lineReader(conn(chunks, "end"), 5000)(), undefined);
});
