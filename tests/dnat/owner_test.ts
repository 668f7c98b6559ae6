import { assertEquals, assertRejects } from "../_assert.ts";
import { environValue, isAlive, parsePs, verifyOwner } from "../../src/dnat/owner.ts";
import { NotAuthorizedError } from "../../src/dnat/authorize.ts";
import type { AddRequest } from "../../src/dnat/contract.ts";
import { parseIp } from "../../src/net/ip.ts";
import { parseIpEndpoint } from "../../src/net/endpoint.ts";
import { fakeProcesses } from "../_fakes/dnat.ts";

Deno.test("parsePs() reads pid, uid and start time from ps in the C locale and UTC", () => {
  const table = parsePs(
    "    1     0 Sun Nov 22 04:07:17 2026\n" +
      " 4242  1001 Mon Dec  1 23:59:59 2025\n" +
      "garbage\n",
  );
  assertEquals([...table], [
    [1, { uid: 0, start: Date.UTC(2026, 10, 22, 4, 7, 17) / 1000 }],
    [4242, { uid: 1001, start: Date.UTC(2025, 11, 1, 23, 59, 59) / 1000 }],
  ]);
});

Deno.test("environValue() takes a variable from a NUL-separated environment, exactly", () => {
  const environ =
    "SSH_ORIGINAL_COMMAND=ascp SSH_CONNECTION=6.6.6.6 1 7.7.7.7 22\0SSH_CONNECTION=198.18.1.2 5000 198.18.1.1 22\0USER=bear\0";
  assertEquals(environValue(environ, "SSH_CONNECTION"), "198.18.1.2 5000 198.18.1.1 22");
  assertEquals(environValue(environ, "HOME"), undefined);
});

Deno.test("isAlive(): same pid and same start time, or the pid was reused", () => {
  const running = new Map([[77, { uid: 1001, start: 500 }]]);
  assertEquals(isAlive({ pid: 77, start: 500 }, running), true);
  assertEquals(isAlive({ pid: 77, start: 499 }, running), false);
  assertEquals(isAlive({ pid: 78, start: 500 }, running), false);
});

const endpoint = parseIpEndpoint("198.18.2.2:22", 22);
const REQUEST: AddRequest = {
  id: "3a9fd819-59c3-42bc-b0a2-d26304a1eb84",
  owner: 77,
  client: parseIp("198.18.1.2")!,
  proxy: parseIp("198.18.1.1")!,
  rule: 1,
  host: 0,
  server: typeof endpoint === "string"
    ? (() => {
      throw new Error(endpoint);
    })()
    : endpoint,
};

Deno.test("verifyOwner(): a sudo caller's own SSH session for the request's addresses", async () => {
  const processes = fakeProcesses();
  processes.running.set(77, { uid: 1001, start: 500 });
  processes.connections.set(77, "198.18.1.2 50123 198.18.1.1 22");
  assertEquals(await verifyOwner(processes, REQUEST, 1001), { pid: 77, start: 500 });
  await assertRejects(
    () => verifyOwner(processes, REQUEST, 1002),
    NotAuthorizedError,
    "process 77 is not the caller's",
  );
  processes.connections.set(77, "198.18.1.3 50123 198.18.1.1 22");
  await assertRejects(
    () => verifyOwner(processes, REQUEST, 1001),
    NotAuthorizedError,
    "process 77 is not an SSH session from 198.18.1.2 to 198.18.1.1",
  );
  processes.connections.delete(77);
  await assertRejects(
    () => verifyOwner(processes, REQUEST, 1001),
    NotAuthorizedError,
    "SSH session",
  );
});

Deno.test("verifyOwner(): root may name any running process; an ended one never", async () => {
  const processes = fakeProcesses();
  await assertRejects(
    () => verifyOwner(processes, REQUEST, undefined),
    NotAuthorizedError,
    "owner process 77 is not running",
  );
  processes.running.set(77, { uid: 0, start: 9 });
  assertEquals(await verifyOwner(processes, REQUEST, undefined), { pid: 77, start: 9 });
});

Deno.test("verifyOwner(): a process replaced during the check is refused", async () => {
  const processes = fakeProcesses();
  let lookups = 0;
  const racing = {
    ...processes,
    lookup: () =>
      Promise.resolve(new Map([[77, { uid: 1001, start: lookups++ === 0 ? 500 : 501 }]])),
  };
  processes.connections.set(77, "198.18.1.2 50123 198.18.1.1 22");
  await assertRejects(
    () => verifyOwner(racing, REQUEST, 1001),
    NotAuthorizedError,
    "owner process 77 ended during the check",
  );
});
