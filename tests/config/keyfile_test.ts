import { assertEquals, assertThrows } from "../_assert.ts";
import { expandKeyfile, InvalidUserError } from "../../src/config/mod.ts";

Deno.test("expandKeyfile() replaces every $(user)", () => {
  assertEquals(expandKeyfile("/home/$(user)/.ssh/id_rsa", "diane"), "/home/diane/.ssh/id_rsa");
  assertEquals(expandKeyfile("/keys/$(user)/$(user).key", "bear"), "/keys/bear/bear.key");
  assertEquals(expandKeyfile("/opt/keys/id_rsa", "bobcat"), "/opt/keys/id_rsa");
  assertEquals(expandKeyfile("/k/$(user)", "svc_backup-1.x"), "/k/svc_backup-1.x");
});

Deno.test("expandKeyfile() takes the names AD/LDAP-joined hosts have", async (t) => {
  const names = [
    "Alice",
    "alice@corp.example",
    "CORP\\alice",
    "1abc",
    "a".repeat(64),
    "ünï",
    "first.last",
    "a b",
  ];
  for (const user of names) {
    await t.step(
      JSON.stringify(user),
      () => assertEquals(expandKeyfile("/keys/$(user)/id", user), `/keys/${user}/id`),
    );
  }
});

Deno.test("expandKeyfile() refuses user names that could escape the path", async (t) => {
  const hostile: Array<[string, string]> = [
    ["..", "it holds / or .."],
    [".", "it holds / or .."],
    ["../root", "it holds / or .."],
    ["a..b", "it holds / or .."],
    ["a/b", "it holds / or .."],
    ["", "it is empty or over 256 characters"],
    ["a".repeat(257), "it is empty or over 256 characters"],
    ["-rf", "it starts with -"],
    ["x\ny", "it holds a control character"],
    ["x\u0085y", "it holds a control character"],
    ["root\u0000", "it holds a control character"],
    ["$(id)", "it holds % or $, which ssh would expand"],
    ["a%hb", "it holds % or $, which ssh would expand"],
  ];
  for (const [user, why] of hostile) {
    await t.step(JSON.stringify(user), () => {
      assertThrows(
        () => expandKeyfile("/home/$(user)/.ssh/id_rsa", user),
        InvalidUserError,
        `Invalid user name ${JSON.stringify(user)}: ${why}`,
      );
    });
  }
});
