import { assertEquals } from "../_assert.ts";
import { manageUsers } from "../../src/forward/user_cmd.ts";
import { parseUsers, serializeUsers, type UsersFile } from "../../src/forward/users.ts";

function store(initial: string) {
  let text = initial;
  let out = "";
  return {
    store: {
      load: () => Promise.resolve(parseUsers(text, "u.json")),
      save: (users: UsersFile) => Promise.resolve(void (text = serializeUsers(users))),
      readStdin: () => Promise.resolve("secret\n"),
      generatePassword: () => "generated",
      out: (line: string) => void (out += line),
    },
    text: () => text,
    out: () => out,
  };
}

Deno.test("manageUsers() treats names Object.prototype carries as ordinary names", async () => {
  const s = store(`{"version": 1, "users": {}}`);
  for (const name of ["constructor", "__proto__", "tostring"]) {
    assertEquals(await manageUsers({ action: "user-del", name }, s.store), 1);
    assertEquals(
      await manageUsers(
        { action: "user-add", name, passwordStdin: true, allow: ["*"], admin: false },
        s.store,
      ),
      0,
    );
  }
  assertEquals(
    s.out(),
    [
      `no API user "constructor"`,
      `added API user "constructor"`,
      `no API user "__proto__"`,
      `added API user "__proto__"`,
      `no API user "tostring"`,
      `added API user "tostring"`,
    ].join("\n") + "\n",
  );
  assertEquals(Object.keys(JSON.parse(s.text()).users), ["constructor", "__proto__", "tostring"]);
  // The file reads back with the same three users, each its own entry.
  assertEquals(
    [...parseUsers(s.text(), "u.json").users.keys()],
    ["constructor", "__proto__", "tostring"],
  );
  assertEquals(await manageUsers({ action: "user-del", name: "__proto__" }, s.store), 0);
  assertEquals(Object.keys(JSON.parse(s.text()).users), ["constructor", "tostring"]);
});
