import { assertEquals } from "../_assert.ts";
import { openFlagsFor } from "../../src/platform/libc.ts";

Deno.test("open flags follow the architecture: aarch64's O_DIRECTORY and O_NOFOLLOW are its own", () => {
  // From the kernel's uapi headers: asm-generic/fcntl.h (x86_64) and arm64's asm/fcntl.h.
  assertEquals(openFlagsFor("x86_64"), { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 });
  assertEquals(openFlagsFor("aarch64"), { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 });
});
