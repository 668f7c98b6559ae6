import { assertEquals } from "../_assert.ts";
import { type ServiceLink, serviceRegistrar } from "../../src/reverse/registrar.ts";
import type { ServiceReply, ServiceRequest } from "../../src/dnat/service_protocol.ts";
import { parseInline } from "../config/_load.ts";
import { fakeLogger } from "../_fakes/logger.ts";

const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";
const config = parseInline(`<server><rproxy><enabled>true</enabled><rules>
<rule><hosts><host>198.18.2.2</host><host>198.18.2.3</host></hosts><keyfile>/k</keyfile></rule>
</rules></rproxy></server>`).config!;
const RULE = config.server.rproxy.rules[0]!;

/** A link answering from a script, keeping what was asked. */
function link(answer: (request: ServiceRequest) => ServiceReply | undefined) {
  const asked: ServiceRequest[] = [];
  let closed = 0;
  const l: ServiceLink = {
    request: (message) => {
      asked.push(message);
      return Promise.resolve(answer(message));
    },
    close: () => void closed++,
  };
  return { link: l, asked, closed: () => closed };
}

Deno.test("the service's registrar takes its id, host order and registration from the service", async () => {
  const told: string[] = [];
  const { link: l, asked } = link((r) => {
    switch (r.op) {
      case "hello":
        return { op: "hello", session: ID };
      case "pick":
        return { op: "pick", order: [1, 0], skipped: [] };
      case "failed":
        return { op: "noted" };
      case "register":
        return { event: "installed", session: ID, proxy: "p", server: "s", filtering: true };
    }
  });
  const registrar = await serviceRegistrar(l, () => fakeLogger(), (line) => void told.push(line));
  assertEquals([registrar?.id, registrar?.via], [ID, "service"]);
  assertEquals((await registrar!.hosts.pick(RULE)).order, [1, 0]);
  // A failure is reported, not marked by the session: the service decides.
  assertEquals(await registrar!.hosts.failed(RULE, 1, "no answer"), false);
  const upstream = RULE.upstreams[0]!;
  assertEquals(
    await registrar!.register({ rule: RULE, upstream, upstreamIndex: 0, udp: true, user: "bo" }),
    "forwarded",
  );
  assertEquals(asked.map((r) => r.op), ["hello", "pick", "failed", "register"]);
  assertEquals(told, []);
});

Deno.test("no hello, no registrar: the session falls back; a refused FASP registration tells the client", async () => {
  const silent = link(() => undefined);
  assertEquals(await serviceRegistrar(silent.link, () => fakeLogger(), () => {}), undefined);
  assertEquals(silent.closed(), 1);
  const told: string[] = [];
  const log = fakeLogger();
  const refusing = link((r) =>
    r.op === "hello" ? { op: "hello", session: ID } : { event: "refused", reason: "no rule 1" }
  );
  const registrar = await serviceRegistrar(refusing.link, () => log, (l) => void told.push(l));
  const upstream = RULE.upstreams[0]!;
  const base = { rule: RULE, upstream, upstreamIndex: 0, user: "bo" };
  assertEquals(await registrar!.register({ ...base, udp: true }), "unavailable");
  assertEquals(told, ["xferproxy: UDP forwarding is unavailable; the SSH session continues"]);
  // Without UDP the client is told nothing: only the closing line is lost.
  assertEquals(await registrar!.register({ ...base, udp: false }), "none");
  assertEquals(told.length, 1);
  assertEquals(log.records.map((r) => r.level), ["error", "error"]);
});

Deno.test("a draining service's hello makes a draining registrar", async () => {
  const drained = link(() => ({ op: "hello", session: ID, draining: true }));
  const registrar = await serviceRegistrar(drained.link, () => fakeLogger(), () => {});
  assertEquals([registrar?.id, registrar?.draining], [ID, true]);
  const open = link(() => ({ op: "hello", session: ID }));
  assertEquals(
    (await serviceRegistrar(open.link, () => fakeLogger(), () => {}))?.draining,
    undefined,
  );
});
