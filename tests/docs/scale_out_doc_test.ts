/** docs/scale-out.md shows the keepalived configuration the VRRP end-to-end test runs. */
import { assertEquals, assertOk } from "../_assert.ts";
import { ROOT } from "../testbed/paths.ts";

Deno.test("docs/scale-out.md shows examples/scale-out/keepalived.conf as it is, after its header", () => {
  const doc = Deno.readTextFileSync(`${ROOT}docs/scale-out.md`);
  const file = Deno.readTextFileSync(`${ROOT}examples/scale-out/keepalived.conf`);
  const shown = /Below, the file after its header comment:\n\n```\n([^]*?)```\n/.exec(doc)?.[1];
  assertOk(shown, "docs/scale-out.md does not show keepalived.conf");
  const body = file.slice(file.indexOf("\nglobal_defs") + 1);
  assertOk(body.includes("vrrp_instance"), "keepalived.conf has no vrrp_instance");
  assertEquals(shown, body);
});
