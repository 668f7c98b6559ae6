import { assertEquals, assertThrows } from "../_assert.ts";
import { decodeUtf8, InvalidUtf8Error, strictText } from "../../src/config/text.ts";

Deno.test("decodeUtf8() refuses invalid UTF-8 with the line and column of the first bad byte", async (t) => {
  const enc = new TextEncoder();
  const bytes = (...parts: Array<string | number[]>) =>
    new Uint8Array(parts.flatMap((p) => typeof p === "string" ? [...enc.encode(p)] : p));
  const cases: Array<[string, Uint8Array, number, number, string]> = [
    [
      "a lone Latin-1 byte",
      bytes("<server>\n  <a>caf", [0xe9], "</a>"),
      2,
      9,
      "invalid UTF-8 (byte 0xe9)",
    ],
    ["an overlong slash", bytes("<x>", [0xc0, 0xaf], "</x>"), 1, 4, "invalid UTF-8 (byte 0xc0)"],
    ["a surrogate", bytes("é\n<x>", [0xed, 0xa0, 0x80]), 2, 4, "invalid UTF-8 (byte 0xed)"],
    [
      "a truncated sequence at the end",
      bytes("<x/>", [0xe2, 0x82]),
      1,
      5,
      "invalid UTF-8 (byte 0xe2)",
    ],
  ];
  for (const [name, input, line, column, message] of cases) {
    await t.step(name, () => assertEquals(decodeUtf8(input), { message, line, column }));
  }
  assertEquals(decodeUtf8(bytes("<x>é€😀</x>")), { text: "<x>é€😀</x>" });
  const error = assertThrows(() => strictText(bytes([0xff])), InvalidUtf8Error);
  assertEquals([error.line, error.column], [1, 1]);
});
