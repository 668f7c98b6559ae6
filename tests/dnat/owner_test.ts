import { assertEquals, assertRejects } from "../_assert.ts";
import {
  identifySession,
  isAlive,
  procProcessTable,
  rootNamedOwner,
  sudoCaller,
} from "../../src/dnat/owner.ts";
import { NotAuthorizedError } from "../../src/dnat/errors.ts";
import { startMs } from "../../src/dnat/procfs.ts";
import { fakeProcesses } from "../_fakes/dnat.ts";
import { fakeProc, type FakeProcess, hex4 } from "../_fakes/proc.ts";

const USER = 1005;
const BOOT = 1_796_000_000;
const TCP = [{ local: hex4("198.18.1.1", 22), remote: hex4("198.18.1.2", 48686), inode: 4242 }];

/** sshd → monitor → user's sshd → session 700 → sudo 800 → dnat add 801. */
function tree(extra: FakeProcess[] = []): FakeProcess[] {
  return [
    { pid: 1, ppid: 0, uid: 0, comm: "systemd" },
    { pid: 600, ppid: 1, uid: 0, comm: "sshd", sockets: [4242] },
    { pid: 601, ppid: 600, uid: USER, comm: "sshd", sockets: [4242] },
    { pid: 700, ppid: 601, uid: USER, comm: "xferproxy", startTicks: 5000 },
    { pid: 800, ppid: 700, uid: USER, euid: 0, comm: "sudo" },
    { pid: 801, ppid: 800, uid: 0, comm: "deno" },
    ...extra,
  ];
}

Deno.test("isAlive(): same pid and same start time, or the pid was reused", () => {
  const running = new Map([[77, { uid: 1001, start: 500_000 }]]);
  assertEquals(isAlive({ pid: 77, start: 500_000 }, running), true);
  assertEquals(isAlive({ pid: 77, start: 499_990 }, running), false);
  assertEquals(isAlive({ pid: 78, start: 500_000 }, running), false);
});

Deno.test("procProcessTable() reads start times in one batch; a zombie is not running", async () => {
  const proc = fakeProc(
    [...tree(), { pid: 900, ppid: 1, uid: 0, comm: "x", exitCode: 0 }],
    [],
    BOOT,
  );
  const found = await procProcessTable(proc).lookup([700, 900, 999]);
  assertEquals([...found.keys()], [700]);
  assertEquals(found.get(700)?.start, startMs(BOOT, 5000));
});

Deno.test("identifySession(): the owner's start, uid and its sshd connection's two ends", async () => {
  const identity = await identifySession(fakeProc(tree(), TCP, BOOT), 700);
  assertEquals(identity.owner, { pid: 700, start: startMs(BOOT, 5000) });
  assertEquals(identity.uid, USER);
  assertEquals(
    [identity.client.ip.text, identity.client.port, identity.proxy.ip.text, identity.proxy.port],
    ["198.18.1.2", 48686, "198.18.1.1", 22],
  );
  await assertRejects(
    () => identifySession(fakeProc(tree(), TCP), 999),
    NotAuthorizedError,
    "not running",
  );
});

Deno.test("sudoCaller(): the process that ran sudo, and only the calling user's", async () => {
  const proc = fakeProc(tree(), TCP, BOOT);
  assertEquals((await sudoCaller(proc, 801, USER)).pid, 700);
  await assertRejects(
    () => sudoCaller(proc, 801, 1006),
    NotAuthorizedError,
    "not the calling user's",
  );
  // Where sudo replaced itself with the command, our parent is the caller.
  const direct = fakeProc(tree([{ pid: 802, ppid: 700, uid: 0, comm: "deno" }]), TCP, BOOT);
  assertEquals((await sudoCaller(direct, 802, USER)).pid, 700);
});

Deno.test("rootNamedOwner(): root may name any running process; an ended one never", async () => {
  const processes = fakeProcesses();
  await assertRejects(() => rootNamedOwner(processes, 77), NotAuthorizedError, "not running");
  processes.running.set(77, { uid: 0, start: 9_000 });
  assertEquals(await rootNamedOwner(processes, 77), { pid: 77, start: 9_000 });
});
