import { assertEquals, assertThrows } from "../_assert.ts";
import { expandKeyfile, InvalidUserError } from "../../src/config/mod.ts";

Deno.test("expandKeyfile() replaces every $(user)", () => {
  assertEquals(expandKeyfile("/home/$(user)/.ssh/id_rsa", "diane"), "/home/diane/.ssh/id_rsa");
  assertEquals(expandKeyfile("/keys/$(user)/$(user).key", "bear"), "/keys/bear/bear.key");
  assertEquals(expandKeyfile("/opt/keys/id_rsa", "bobcat"), "/opt/keys/id_rsa");
  assertEquals(expandKeyfile("/k/$(user)", "svc_backup-1.x"), "/k/svc_backup-1.x");
});

Deno.test("expandKeyfile() refuses user names that could escape the path", async (t) => {
  const hostile = [
    "..",
    ".",
    "../root",
    "a/b",
    "Alice",
    "",
    "a b",
    "-rf",
    "x\ny",
    "$(id)",
    "a;b",
    "1abc",
    "a".repeat(33),
    "ünï",
    "root\u0000",
  ];
  for (const user of hostile) {
    await t.step(JSON.stringify(user), () => {
      assertThrows(
        () => expandKeyfile("/home/$(user)/.ssh/id_rsa", user),
        InvalidUserError,
        "Invalid user name",
      );
    });
  }
});
