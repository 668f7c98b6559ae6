import { assertEquals } from "../_assert.ts";
import { executableCodeRanges } from "../../src/process/code_pages.ts";

const RUNTIME = "/var/cache/xferproxy/0a1b/deno";
// The shape of a Deno process's maps (trimmed): V8's heap below the executable, libc after it.
const MAPS = [
  "31ffc0000-320000000 rw-p 00000000 00:00 0 ",
  `5622c8a00000-5622ca78e000 r--p 00000000 08:01 1048602                    ${RUNTIME}`,
  `5622ca78e000-5622ce481000 r-xp 01d8e000 08:01 1048602                    ${RUNTIME}`,
  `5622ce481000-5622ce6f1000 r--p 05a81000 08:01 1048602                    ${RUNTIME}`,
  `5622ce6f1000-5622ce72a000 rw-p 05cf1000 08:01 1048602                    ${RUNTIME}`,
  "5622cf000000-5622cf100000 rw-p 00000000 00:00 0                          [heap]",
  "7f1c2a000000-7f1c2a028000 r--p 00000000 08:01 2097270                    /usr/lib/x86_64-linux-gnu/libc.so.6",
  "7f1c2a028000-7f1c2a1bd000 r-xp 00028000 08:01 2097270                    /usr/lib/x86_64-linux-gnu/libc.so.6",
  `7f1c2b000000-7f1c2b100000 r--s 00000000 08:01 1048700                    ${RUNTIME}.cache`,
  "",
].join("\n");

Deno.test("executableCodeRanges() picks the executable's read-only and code pages only", async (t) => {
  await t.step(
    "its r--p and r-xp mappings, in order, with their lengths",
    () =>
      assertEquals(executableCodeRanges(MAPS, RUNTIME), [
        { start: 0x5622c8a00000n, length: 0x1d8e000n },
        { start: 0x5622ca78e000n, length: 0x3cf3000n },
        { start: 0x5622ce481000n, length: 0x270000n },
      ]),
  );
  await t.step("never a writable mapping of it (relocated data lives there)", () => {
    const ranges = executableCodeRanges(MAPS, RUNTIME);
    assertEquals(ranges.some((r) => r.start === 0x5622ce6f1000n), false);
  });
  await t.step("never another file, nor one whose name only starts like it", () => {
    assertEquals(executableCodeRanges(MAPS, "/usr/lib/x86_64-linux-gnu/libc.so"), []);
    assertEquals(executableCodeRanges(MAPS, "/var/cache/xferproxy/0a1b/den"), []);
  });
  await t.step("a path with spaces is matched whole", () => {
    const spaced = "/opt/my tools/deno";
    assertEquals(
      executableCodeRanges(`1000-3000 r-xp 00000000 08:01 7 ${spaced}\n`, spaced),
      [{ start: 0x1000n, length: 0x2000n }],
    );
  });
  await t.step("an empty or garbled text gives nothing", () => {
    assertEquals(executableCodeRanges("", RUNTIME), []);
    assertEquals(executableCodeRanges(`zz-yy r-xp 0 0 0 ${RUNTIME}\n`, RUNTIME), []);
  });
});
