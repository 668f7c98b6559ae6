import { assertEquals } from "../_assert.ts";
import { lastLine } from "../../src/platform/flow_events.ts";

function chunks(...texts: string[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(texts.map((t) => new TextEncoder().encode(t)));
}

Deno.test("lastLine() keeps a stream's last line, whatever the chunks, never joined to another", async () => {
  assertEquals(
    await lastLine(chunks("see the manpage.\n", "conntrack v1.4.7: 0 flow ", "events shown.\n")),
    "conntrack v1.4.7: 0 flow events shown.",
  );
  assertEquals(await lastLine(chunks("one\ntwo\n\n")), "two");
  assertEquals(await lastLine(chunks("unfinished")), "unfinished");
  assertEquals(await lastLine(chunks()), "");
  assertEquals((await lastLine(chunks("x".repeat(2000)))).length, 500);
});
