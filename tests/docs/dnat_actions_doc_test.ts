/**
 * docs/dnat.md's "Who may ask for what" is the privileged action table of
 * src/dnat/actions.ts, row for row: administrators decide on the sudoers
 * line and the socket's group from it.
 */
import { assertEquals } from "../_assert.ts";
import { DNAT_COMMANDS, SERVICE_REQUESTS } from "../../src/dnat/actions.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("docs/dnat.md lists every privileged action with its ways in and scope", async () => {
  const text = await Deno.readTextFile(new URL("docs/dnat.md", ROOT));
  const section = text.slice(text.indexOf("### Who may ask for what"));
  const rows = [...section.matchAll(/^\| `([a-z]+)` +\| ([a-z, ]+?) +\| (.+?) +\|$/gm)].map((
    m,
  ) => ({
    action: m[1],
    channels: m[2]!.split(", "),
    scope: m[3]!.replaceAll("`", ""),
  }));
  const code = Object.entries({ ...DNAT_COMMANDS, ...SERVICE_REQUESTS }).map(([action, a]) => ({
    action,
    channels: [...a.channels],
    scope: a.scope,
  }));
  assertEquals(rows, code);
});
