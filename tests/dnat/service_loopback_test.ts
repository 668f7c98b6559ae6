import { assertEquals } from "../_assert.ts";
import { loopback } from "../../src/dnat/service_loopback.ts";

Deno.test("a loopback carries requests to the service's end and its replies back, in order", async () => {
  const { link, connection } = loopback({ pid: 7 });
  assertEquals(connection.peer, { pid: 7 });
  const asked = link.request({ op: "hello" }, 1000);
  assertEquals(await connection.nextLine(1000), '{"op":"hello"}');
  connection.send('{"op":"noted"}\n');
  assertEquals(await asked, { op: "noted" });
});

Deno.test("closing either end releases the other's waits with nothing", async () => {
  const first = loopback({ pid: 7 });
  const waiting = first.connection.nextLine(60_000);
  first.link.close();
  assertEquals(await waiting, undefined);
  assertEquals(await first.link.request({ op: "hello" }, 60_000), undefined);
  const second = loopback({ pid: 8 });
  const asked = second.link.request({ op: "hello" }, 60_000);
  second.connection.close();
  assertEquals(await asked, undefined);
});

Deno.test("a wait that runs out returns nothing and leaves no waiter behind", async () => {
  const { link, connection } = loopback({ pid: 7 });
  assertEquals(await connection.nextLine(5), undefined);
  // A later request goes to the next wait, not to the expired one.
  const next = connection.nextLine(1000);
  void link.request({ op: "hello" }, 5);
  assertEquals(await next, '{"op":"hello"}');
  link.close();
});
