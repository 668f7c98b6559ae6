import { assertEquals, assertRejects } from "../_assert.ts";
import { getLogger } from "@logtape/logtape";
import {
  type AdministerDeps,
  deleteSession,
  listSessions,
  reapSessions,
} from "../../src/dnat/administer.ts";
import { install } from "../../src/dnat/install.ts";
import { NotAuthorizedError } from "../../src/dnat/errors.ts";
import { parseInline } from "../config/_load.ts";
import { fakeDnatDeps } from "../_fakes/dnat.ts";
import { dnatSession, kernelSession, registration } from "./_build.ts";

const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/k</keyfile></rule>
</rules></rproxy></server>`).config!;

const ALICE = 1001;
const BOB = 1002;

function setup() {
  const fakes = fakeDnatDeps(config);
  const printed: string[] = [];
  const deps: AdministerDeps = {
    ...fakes.deps,
    log: getLogger(["xferproxy", "test"]),
    print: (text) => void printed.push(text),
  };
  const add = async (pid: number, uid: number) => {
    fakes.processes.running.set(pid, { uid, start: 5_000 });
    const request = registration(pid, { start: 5_000, claimant: { uid } });
    return (await install(deps, request)).forwarding.session;
  };
  return { ...fakes, deps, printed, add };
}

Deno.test("dnat del: a user removes their own session, never another's", async () => {
  const { deps, store, add } = setup();
  const alices = await add(70, ALICE);
  await assertRejects(
    () => deleteSession(deps, alices.id, { uid: BOB }),
    NotAuthorizedError,
    `session ${alices.id} is not the caller's`,
  );
  await deleteSession(deps, alices.id, { uid: ALICE });
  assertEquals(store.registry.entries, []);
  await assertRejects(
    () => deleteSession(deps, alices.id, {}),
    NotAuthorizedError,
    "no DNAT session",
  );
});

Deno.test("dnat del as root also removes rules only the kernel holds", async () => {
  const { deps, backend } = setup();
  const { id } = kernelSession();
  backend.kernel.set(id, kernelSession());
  await assertRejects(() => deleteSession(deps, id, { uid: ALICE }), NotAuthorizedError);
  await deleteSession(deps, id, {});
  assertEquals(backend.kernel.size, 0);
});

Deno.test("dnat list: each user sees their own sessions; root sees all, with liveness", async () => {
  const { deps, printed, processes, add } = setup();
  const alices = await add(70, ALICE);
  await add(71, BOB);
  processes.running.delete(71);
  await listSessions(deps, { uid: ALICE }, true);
  const mine = JSON.parse(printed.pop()!);
  assertEquals(mine.map((s: { id: string; alive: boolean }) => [s.id, s.alive]), [[
    alices.id,
    true,
  ]]);
  await listSessions(deps, {}, false);
  const lines = printed.join("").trim().split("\n");
  assertEquals(lines.length, 2);
  assertEquals(
    lines[0],
    `${alices.id} owner 70  198.18.1.2:* -> 198.18.1.1:33001 -> 198.18.2.2:33001`,
  );
  assertEquals(lines[1]?.includes("owner 71 (gone)"), true);
});

Deno.test("dnat reap: a user reaps only their own ended sessions; --all is root's", async () => {
  const { deps, store, backend, processes, add } = setup();
  await add(70, ALICE);
  await add(71, BOB);
  processes.running.delete(70);
  processes.running.delete(71);
  assertEquals(await reapSessions(deps, { uid: ALICE }, false), 1);
  assertEquals(store.registry.entries.map((e) => e.uid), [BOB]);
  await assertRejects(
    () => reapSessions(deps, { uid: ALICE }, true),
    NotAuthorizedError,
    "as root",
  );
  processes.running.set(71, { uid: BOB, start: 5_000 }); // else the next install reaps it
  await add(72, ALICE);
  assertEquals(await reapSessions(deps, {}, true), 2);
  assertEquals([store.registry.entries, backend.kernel.size, backend.ops.at(-1)], [
    [],
    0,
    "teardown",
  ]);
});

Deno.test("dnat list shows the forward daemon's sessions (rule 0, TCP too) and removals being retried", async () => {
  const { deps, printed, store } = setup();
  const session = { ...dnatSession({ owner: { pid: 70, start: 1_000 } }), tcpServerPort: 22 };
  store.registry = {
    entries: [{
      id: session.id,
      owner: session.owner,
      uid: 0,
      rule: 0,
      created: 1,
      forwarding: { session, filtering: false },
      removing: 2,
    }],
  };
  await listSessions(deps, {}, false);
  assertEquals(
    printed.join(""),
    `${session.id} owner 70 (gone) forward (removing)  198.18.1.2:* -> 198.18.1.1:33001 -> 198.18.2.2:33001 (tcp -> 198.18.2.2:22)\n`,
  );
});
