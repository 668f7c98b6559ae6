import { assertEquals, assertMatch } from "../_assert.ts";
import { DNAT_COMMANDS, refusedThroughSudo } from "../../src/dnat/actions.ts";
import { DNAT_ACTIONS } from "../../src/dnat/contract.ts";

Deno.test("through sudo, exactly the actions the table opens to sudo are taken", () => {
  const taken = DNAT_ACTIONS.filter((a) => refusedThroughSudo(a, 1001) === undefined);
  assertEquals(taken, ["add", "del", "list", "reap"]);
  for (const action of DNAT_ACTIONS) {
    assertEquals(DNAT_COMMANDS[action].channels.includes("root"), true, action);
  }
  assertMatch(refusedThroughSudo("drain", 1001) as string, /for root: through sudo .* uid 1001/);
  assertMatch(refusedThroughSudo("serve", 1001) as string, /run it as root/);
});
