import { assertEquals, assertMatch, assertOk } from "../_assert.ts";
import { fakeLogger } from "../_fakes/logger.ts";
import { Buffer } from "node:buffer";
import { createApi, type ForwardSession } from "../../src/forward/api.ts";
import { parseSessionView } from "../../src/forward/contract.ts";
import { type ApiUser, hashesComputed, hashPassword } from "../../src/forward/users.ts";
import { parseCidr, parseIp } from "../../src/net/ip.ts";
import { parseInline } from "../config/_load.ts";

const CLIENT = parseIp("198.18.30.2")!;

function setup(
  overrides: Record<string, string> = {},
  opts: { portFree?: (p: number) => boolean; failInstall?: boolean; families?: Set<4 | 6> } = {},
) {
  const options = {
    enabled: "true",
    authentication: "true",
    port_range_low: "5000",
    port_range_high: "5002",
    session_timeout: "30",
    ...overrides,
  };
  const proxyXml = Object.entries(options).map(([k, v]) => `<${k}>${v}</${k}>`).join("");
  const config = parseInline(
    `<server><enable_http>true</enable_http><proxy>${proxyXml}</proxy></server>`,
  ).config!;
  let now = 1_000_000;
  let ids = 0;
  const installed: string[] = [];
  const removed: string[] = [];
  const users = {
    version: 1 as const,
    users: new Map<string, ApiUser>([
      ["alice", {
        ...hashPassword("pw", Buffer.from("salt-alice-16byt").toString("base64")),
        allow: ["198.19.0.0/16", "files.example"],
        admin: false,
      }],
      ["boss", {
        ...hashPassword("pw2", Buffer.from("salt-boss-16byte").toString("base64")),
        allow: ["*"],
        admin: true,
      }],
    ]),
  };
  const log = fakeLogger();
  const api = createApi({
    config: config.server.proxy,
    proxyAddress: () => Promise.resolve(parseIp("198.18.30.1")),
    own: [parseCidr("198.18.30.0/24")!],
    loadUsers: () => Promise.resolve(users),
    resolve: (name) =>
      name === "broken.example" ? Promise.reject(new Error("SERVFAIL")) : Promise.resolve(
        name === "files.example"
          ? [parseIp("198.19.7.7")!]
          : name === "inside.example"
          ? [parseIp("10.1.1.1")!]
          : [],
      ),
    portFree: (p) => Promise.resolve(opts.portFree?.(p) ?? true),
    install: (s: ForwardSession) => {
      if (opts.failInstall) return Promise.reject(new Error("iptables-restore failed"));
      installed.push(`${s.id}:${s.port}`);
      return Promise.resolve();
    },
    remove: (s: ForwardSession) => {
      removed.push(`${s.id}:${s.port}`);
      return Promise.resolve();
    },
    now: () => now,
    newId: () => `00000000-0000-4000-8000-${String(++ids).padStart(12, "0")}`,
    log,
    ...(opts.families ? { families: opts.families } : {}),
  });
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    auth: string | null = "alice:pw",
    client = CLIENT,
  ) => {
    // null: no Authorization header at all.
    const headers: Record<string, string> = auth === null
      ? {}
      : { authorization: "Basic " + btoa(auth) };
    const response = await api.handle(
      new Request(`http://proxy${path}`, {
        method,
        headers,
        ...(body !== undefined
          ? { body: typeof body === "string" ? body : JSON.stringify(body) }
          : {}),
      }),
      client,
    );
    const text = await response.text();
    return {
      status: response.status,
      body: text
        ? JSON.parse(text.startsWith("{") || text.startsWith("[") ? text : JSON.stringify(text))
        : undefined,
      headers: response.headers,
    };
  };
  return { api, call, installed, removed, users, log, advance: (ms: number) => void (now += ms) };
}

Deno.test("every session the API answers, the client reads back whole", async () => {
  const { api, call } = setup();
  const response = await api.handle(
    new Request("http://proxy/v1/sessions", {
      method: "POST",
      headers: { authorization: "Basic " + btoa("alice:pw") },
      body: JSON.stringify({ destination: "files.example" }),
    }),
    CLIENT,
  );
  const created = parseSessionView(await response.text());
  assertEquals([response.status, created?.address, created?.port], [201, "198.19.7.7", 5000]);
  const listed = (await call("GET", "/v1/sessions")).body as unknown[];
  assertEquals(listed.map((v) => parseSessionView(JSON.stringify(v))), [created]);
});

Deno.test("allocation: lowest free port, reuse after release, 503 when exhausted", async () => {
  const { call, installed, removed } = setup();
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    ports.push((await call("POST", "/v1/sessions", { destination: "198.19.1.1" })).body.port);
  }
  assertEquals(ports, [5000, 5001, 5002]);
  const full = await call("POST", "/v1/sessions", { destination: "198.19.1.1" });
  assertEquals([full.status, full.body.error], [503, "no free proxy port in 5000-5002"]);
  assertEquals(installed.length, 3);
  const second = "00000000-0000-4000-8000-000000000002";
  assertEquals((await call("DELETE", `/v1/sessions/${second}`)).status, 204);
  assertEquals(removed, [`${second}:5001`]);
  assertEquals((await call("POST", "/v1/sessions", { destination: "198.19.1.1" })).body.port, 5001);
});

Deno.test("allocation: a port something else listens on is skipped", async () => {
  const { call } = setup({}, { portFree: (p) => p !== 5000 });
  assertEquals((await call("POST", "/v1/sessions", { destination: "198.19.1.1" })).body.port, 5001);
});

Deno.test("allocation: concurrent requests never share a port", async () => {
  const { call } = setup({ port_range_high: "5099" });
  const results = await Promise.all(
    Array.from({ length: 60 }, () => call("POST", "/v1/sessions", { destination: "198.19.1.1" })),
  );
  const ports = results.map((r) => r.body.port);
  assertEquals(new Set(ports).size, 60);
});

Deno.test("a failed install leaves nothing behind and says so", async () => {
  const { api, call, removed } = setup({}, { failInstall: true });
  const result = await call("POST", "/v1/sessions", { destination: "198.19.1.1" });
  assertEquals(result.status, 500);
  assertEquals(api.sessions.size, 0);
  assertEquals(removed.length, 1);
});

Deno.test("policy: allowed prefixes and names, refused private and own ranges", async (t) => {
  const { call } = setup();
  const cases: Array<[string, number, RegExp | undefined]> = [
    ["198.19.5.5", 201, undefined],
    ["files.example", 201, undefined],
    ["198.20.1.1", 403, /not in your allowed destinations/],
    ["10.0.0.1", 403, /10\.0\.0\.0\/8/],
    ["192.168.1.1", 403, /192\.168\.0\.0\/16/],
    ["198.18.30.9", 403, /198\.18\.30\.0\/24/],
    ["inside.example", 403, /10\.1\.1\.1 is in 10\.0\.0\.0\/8/],
    ["nowhere.example", 400, /cannot resolve nowhere\.example/],
  ];
  for (const [destination, status, reason] of cases) {
    await t.step(destination, async () => {
      const r = await call("POST", "/v1/sessions", { destination });
      assertEquals(r.status, status, JSON.stringify(r.body));
      if (reason) assertMatch(r.body.error, reason);
    });
  }
});

Deno.test("auth: 401 with a challenge, then a per-address back-off that lifts", async () => {
  const { call, advance } = setup();
  for (let i = 0; i < 3; i++) {
    const r = await call("GET", "/v1/sessions", undefined, "alice:nope");
    assertEquals(r.status, 401);
    assertEquals(r.headers.get("www-authenticate"), 'Basic realm="xferproxy"');
  }
  const blocked = await call("GET", "/v1/sessions");
  assertEquals([blocked.status, blocked.headers.get("retry-after")], [429, "1"]);
  advance(1001);
  assertEquals((await call("GET", "/v1/sessions")).status, 200);
  assertEquals((await call("GET", "/v1/sessions", undefined, "mallory:pw")).status, 401);
});

Deno.test("authentication off: the user name is only a label, public destinations only", async () => {
  const { call } = setup({ authentication: "false" });
  const r = await call("POST", "/v1/sessions", { destination: "203.0.113.9" }, "whoever:anything");
  assertEquals([r.status, r.body.user], [201, "whoever"]);
  assertEquals(
    (await call("POST", "/v1/sessions", { destination: "10.0.0.1" }, "whoever:x")).status,
    403,
  );
});

Deno.test("lifetimes: keepalives extend a session, silence expires it (fake clock)", async () => {
  const { api, call, advance, removed } = setup();
  const a = (await call("POST", "/v1/sessions", { destination: "198.19.1.1" })).body;
  const b = (await call("POST", "/v1/sessions", { destination: "198.19.1.2" })).body;
  assertEquals(a.expires_at, new Date(1_000_000 + 30_000).toISOString());
  advance(20_000);
  assertEquals((await call("POST", `/v1/sessions/${a.id}/keepalive`)).status, 200);
  advance(15_000);
  assertEquals(await api.expire(), 1);
  assertEquals(removed, [`${b.id}:5001`]);
  assertEquals((await call("GET", `/v1/sessions/${b.id}`)).status, 404);
  assertEquals((await call("GET", `/v1/sessions/${a.id}`)).status, 200);
});

Deno.test("sessions are private to their user; admins see all", async () => {
  const { call } = setup();
  const mine = (await call("POST", "/v1/sessions", { destination: "198.19.1.1" })).body;
  assertEquals((await call("GET", "/v1/sessions", undefined, "boss:pw2")).body.length, 1);
  const other =
    (await call("POST", "/v1/sessions", { destination: "198.20.1.1" }, "boss:pw2")).body;
  assertEquals((await call("GET", "/v1/sessions")).body.map((s: { id: string }) => s.id), [
    mine.id,
  ]);
  assertEquals((await call("DELETE", `/v1/sessions/${other.id}`)).status, 404);
});

Deno.test("bad input: malformed JSON, bad ports, oversized bodies, unknown paths", async () => {
  const { call } = setup();
  assertEquals((await call("POST", "/v1/sessions", "{nope")).status, 400);
  assertEquals(
    (await call("POST", "/v1/sessions", { destination: "198.19.1.1", ssh_port: 70000 })).status,
    400,
  );
  assertEquals((await call("POST", "/v1/sessions", { destination: "a b" })).status, 400);
  assertEquals((await call("POST", "/v1/sessions", "x".repeat(20_000))).status, 413);
  assertEquals((await call("GET", "/v2/anything")).status, 404);
  assertEquals((await call("PUT", "/v1/sessions")).status, 405);
  const metrics = await call("GET", "/metrics");
  assertOk(String(metrics.body).includes("xferproxy_forward_ports_free 3"));
  assertOk(/^xferproxy_build_info\{version="[^"]+"\} 1$/m.test(String(metrics.body)));
  // /metrics is behind the API's login.
  assertEquals((await call("GET", "/metrics", undefined, "alice:wrong")).status, 401);
});

Deno.test("auth: a verified credential is reused, but not after the password changes or the TTL", async () => {
  const { call, users, advance } = setup();
  assertEquals((await call("GET", "/v1/sessions")).status, 200);
  assertEquals((await call("GET", "/v1/sessions")).status, 200);
  assertEquals((await call("GET", "/v1/sessions", undefined, "alice:other")).status, 401);
  // The administrator changes alice's password: the remembered credential no longer counts.
  users.users.set("alice", { ...users.users.get("alice")!, ...hashPassword("new") });
  assertEquals((await call("GET", "/v1/sessions")).status, 401);
  assertEquals((await call("GET", "/v1/sessions", undefined, "alice:new")).status, 200);
  advance(61_000);
  assertEquals((await call("GET", "/v1/sessions", undefined, "alice:new")).status, 200);
});

Deno.test("auth: 100 concurrent wrong passwords get three checks, then the back-off", async () => {
  const { call } = setup();
  const before = hashesComputed();
  const results = await Promise.all(
    Array.from({ length: 100 }, () => call("GET", "/v1/sessions", undefined, "alice:guess")),
  );
  const statuses = results.map((r) => r.status);
  assertEquals(statuses.filter((s) => s === 401).length, 3);
  assertEquals(statuses.filter((s) => s === 429).length, 97);
  assertEquals(hashesComputed() - before, 3);
});

Deno.test("auth: a burst of good requests costs one hash, and the loop stays free meanwhile", async () => {
  const { call } = setup();
  const before = hashesComputed();
  const logins = Promise.all(
    Array.from({ length: 20 }, () => call("GET", "/v1/sessions", undefined, "boss:pw2")),
  );
  // scrypt runs on the thread pool: an unauthenticated request is answered while it hashes.
  const hashedWhenHealthAnswered = await call("GET", "/healthz").then((r) => {
    assertEquals(r.status, 200);
    return hashesComputed() - before;
  });
  assertEquals(hashedWhenHealthAnswered, 0);
  const results = await logins;
  assertEquals(results.every((r) => r.status === 200), true);
  assertEquals(hashesComputed() - before, 1);
});

Deno.test("auth: an unknown user costs a hash like a known one", async () => {
  const { call } = setup();
  const before = hashesComputed();
  assertEquals((await call("GET", "/v1/sessions", undefined, "nobody:pw")).status, 401);
  assertEquals(hashesComputed() - before, 1);
  assertEquals((await call("GET", "/v1/sessions", undefined, "alice:wrong")).status, 401);
  assertEquals(hashesComputed() - before, 2);
});

Deno.test("policy: a protected range opens only for an allow prefix at least as specific", async (t) => {
  const cases: Array<[string[], string, number, RegExp | undefined]> = [
    // The red team's list: two halves of the whole space reach nothing protected.
    [["0.0.0.0/1", "128.0.0.0/1"], "127.0.0.1", 403, /127\.0\.0\.0\/8/],
    [["0.0.0.0/1", "128.0.0.0/1"], "198.18.30.1", 403, /198\.18\.30\.0\/24/],
    [["0.0.0.0/1", "128.0.0.0/1"], "10.9.9.9", 403, /10\.0\.0\.0\/8/],
    [["0.0.0.0/1", "128.0.0.0/1"], "198.19.1.1", 201, undefined],
    [["10.0.0.0/7"], "10.1.1.1", 403, /10\.0\.0\.0\/8/],
    [["10.0.0.0/8"], "10.1.1.1", 201, undefined],
    [["10.1.1.0/24"], "10.1.1.1", 201, undefined],
    [["198.18.0.0/15"], "198.18.30.9", 403, /198\.18\.30\.0\/24/],
    [["198.18.30.9/32"], "198.18.30.9", 201, undefined],
  ];
  for (const [allow, destination, status, reason] of cases) {
    await t.step(`${allow.join(",")} → ${destination}`, async () => {
      const { call, users } = setup({ port_range_high: "5099" });
      users.users.set("carol", { ...users.users.get("alice")!, allow });
      const r = await call("POST", "/v1/sessions", { destination }, "carol:pw");
      assertEquals(r.status, status, JSON.stringify(r.body));
      if (reason) assertMatch(r.body.error, reason);
    });
  }
});

Deno.test("a user cannot hold more than max_sessions_per_user sessions", async () => {
  const { call } = setup({ port_range_high: "5099", max_sessions_per_user: "3" });
  const made = [];
  for (let i = 0; i < 3; i++) {
    made.push(await call("POST", "/v1/sessions", { destination: "198.19.1.1" }));
  }
  assertEquals(made.map((r) => r.status), [201, 201, 201]);
  const over = await call("POST", "/v1/sessions", { destination: "198.19.1.1" });
  assertEquals([over.status, over.body.error], [
    429,
    "you already hold 3 sessions (max_sessions_per_user)",
  ]);
  // Others are not affected, and a released session makes room.
  assertEquals(
    (await call("POST", "/v1/sessions", { destination: "198.19.1.1" }, "boss:pw2")).status,
    201,
  );
  await call("DELETE", `/v1/sessions/${made[0]!.body.id}`);
  assertEquals((await call("POST", "/v1/sessions", { destination: "198.19.1.1" })).status, 201);
});

Deno.test("IPv6: refused with 503 when the proxy does not forward it, allowed when it does", async () => {
  const client6 = parseIp("2001:db8:30::2")!;
  const body = { destination: "2001:db8:40::2" };
  const off = setup({}, { families: new Set([4]) });
  off.users.users.set("six", {
    ...off.users.users.get("alice")!,
    allow: ["2001:db8:40::/64"],
  });
  const refused = await off.call("POST", "/v1/sessions", body, "six:pw", client6);
  assertEquals([refused.status, refused.body.error], [
    503,
    "the proxy does not forward IPv6 (net.ipv6.conf.all.forwarding is 0, or no ip6tables: see its log)",
  ]);
  const on = setup({}, { families: new Set([4, 6]) });
  on.users.users.set("six", {
    ...on.users.users.get("alice")!,
    allow: ["2001:db8:40::/64"],
  });
  const made = await on.call("POST", "/v1/sessions", body, "six:pw", client6);
  assertEquals([made.status, made.body.client, made.body.address], [
    201,
    "2001:db8:30::2",
    "2001:db8:40::2",
  ]);
  // A mixed pair is refused before any policy.
  const mixed = await on.call(
    "POST",
    "/v1/sessions",
    { destination: "198.19.1.1" },
    "six:pw",
    client6,
  );
  assertEquals(mixed.status, 400);
});

Deno.test("auth: names Object.prototype carries are ordinary unknown users, counted as failures", async () => {
  const { api, call } = setup();
  for (const name of ["constructor", "toString", "hasOwnProperty"]) {
    const r = await call("GET", "/v1/sessions", undefined, `${name}:x`);
    assertEquals([r.status, r.headers.get("www-authenticate")], [401, 'Basic realm="xferproxy"']);
  }
  assertEquals(api.metrics.authFailures, 3);
  // Three failures from this address: the back-off holds the next name too.
  assertEquals((await call("GET", "/v1/sessions", undefined, "__proto__:x")).status, 429);
});

Deno.test("auth: one's own good login does not reset the back-off on guesses for another", async () => {
  const { api, call } = setup();
  // The attack: two guesses at boss's password, one good login as alice, from one address, 20 times.
  const guesses: number[] = [];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 2; i++) {
      guesses.push((await call("GET", "/v1/sessions", undefined, "boss:guess")).status);
    }
    await call("GET", "/v1/sessions");
  }
  assertEquals(guesses.length, 40);
  assertEquals(guesses.filter((s) => s === 401).length, 3);
  assertEquals(guesses.filter((s) => s === 429).length, 37);
  assertEquals(api.metrics.authFailures, 3);
});

Deno.test("auth: spraying two guesses each at many names, between good logins, meets the address's back-off", async () => {
  const { call } = setup();
  const guesses: number[] = [];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 2; i++) {
      guesses.push((await call("GET", "/v1/sessions", undefined, `user${round}:guess`)).status);
    }
    await call("GET", "/v1/sessions");
  }
  assertEquals(guesses.filter((s) => s === 401).length, 3);
  assertEquals(guesses.filter((s) => s === 429).length, 37);
});

Deno.test("auth: failures count per target name across addresses; a success clears its own name", async () => {
  const { call, advance } = setup();
  const from = (n: number) => parseIp(`198.18.30.${10 + n}`)!;
  // Three addresses, one guess each at boss: boss is held, from a fourth address too.
  for (let n = 0; n < 3; n++) {
    assertEquals((await call("GET", "/v1/sessions", undefined, "boss:guess", from(n))).status, 401);
  }
  const held = await call("GET", "/v1/sessions", undefined, "boss:pw2", from(3));
  assertEquals([held.status, held.body.error], [
    429,
    "too many failed logins for boss; retry in 1 s",
  ]);
  // Other names are not held; alice's success does not clear boss's count.
  assertEquals((await call("GET", "/v1/sessions", undefined, "alice:pw", from(3))).status, 200);
  assertEquals((await call("GET", "/v1/sessions", undefined, "boss:pw2", from(3))).status, 429);
  // boss's own success, once the hold is over, clears boss's count: one more failure is not held.
  advance(1001);
  assertEquals((await call("GET", "/v1/sessions", undefined, "boss:pw2", from(3))).status, 200);
  assertEquals((await call("GET", "/v1/sessions", undefined, "boss:guess", from(4))).status, 401);
  assertEquals((await call("GET", "/v1/sessions", undefined, "boss:pw2", from(3))).status, 200);
});

Deno.test("auth: guesses at a name hold its new sessions, never its running ones' keepalives", async () => {
  const { call } = setup();
  const attacker = parseIp("198.18.30.66")!;
  const mine = (await call("POST", "/v1/sessions", { destination: "198.19.1.1" })).body;
  const bosses = (await call("POST", "/v1/sessions", { destination: "198.20.1.2" }, "boss:pw2"))
    .body;
  for (let i = 0; i < 3; i++) {
    assertEquals(
      (await call("GET", "/v1/sessions", undefined, "alice:guess", attacker)).status,
      401,
    );
  }
  const created = await call("POST", "/v1/sessions", { destination: "198.19.1.1" });
  assertEquals([created.status, created.body.error], [
    429,
    "too many failed logins for alice; retry in 1 s",
  ]);
  // Naming one of her sessions (an unguessable ID) gets past her name's hold, with her password.
  assertEquals((await call("POST", `/v1/sessions/${mine.id}/keepalive`)).status, 200);
  assertEquals((await call("GET", `/v1/sessions/${mine.id}`)).status, 200);
  assertEquals(
    (await call("POST", `/v1/sessions/${mine.id}/keepalive`, undefined, "alice:guess")).status,
    401,
  );
  // Someone else's session is no way past it, and her keepalives did not clear her name's count.
  assertEquals(
    (await call("POST", `/v1/sessions/${bosses.id}/keepalive`, undefined, "alice:pw")).status,
    429,
  );
  assertEquals((await call("POST", "/v1/sessions", { destination: "198.19.1.1" })).status, 429);
});

Deno.test("auth: 100 concurrent guesses at one name from 100 addresses get three checks", async () => {
  const { call } = setup();
  const before = hashesComputed();
  const results = await Promise.all(
    Array.from(
      { length: 100 },
      (_, i) => call("GET", "/v1/sessions", undefined, "alice:guess", parseIp(`198.18.31.${i}`)!),
    ),
  );
  const statuses = results.map((r) => r.status);
  assertEquals(statuses.filter((s) => s === 401).length, 3);
  assertEquals(statuses.filter((s) => s === 429).length, 97);
  assertEquals(hashesComputed() - before, 3);
});

Deno.test("authentication off: sessions belong to the client address that made them", async () => {
  const { api, call, removed } = setup({ authentication: "false" });
  const other = parseIp("198.18.30.3")!;
  const mine = (await call("POST", "/v1/sessions", { destination: "203.0.113.9" }, "alice:x")).body;
  // The attack: another address lists, keeps alive and deletes, under the same label or none.
  for (const auth of ["alice:x", "", "anonymous:"]) {
    assertEquals((await call("GET", "/v1/sessions", undefined, auth, other)).body, []);
    for (
      const [method, path] of [
        ["GET", `/v1/sessions/${mine.id}`],
        ["POST", `/v1/sessions/${mine.id}/keepalive`],
        ["DELETE", `/v1/sessions/${mine.id}`],
      ]
    ) {
      const r = await call(method!, path!, undefined, auth, other);
      assertEquals([r.status, r.body.error], [404, "no such session"], `${auth} ${method}`);
    }
  }
  assertEquals([api.sessions.size, removed], [1, []]);
  // The address that made it, whatever label it sends.
  const listed = await call("GET", "/v1/sessions", undefined, "bob:y");
  assertEquals(listed.body.map((s: { id: string }) => s.id), [mine.id]);
  assertEquals(
    (await call("POST", `/v1/sessions/${mine.id}/keepalive`, undefined, "")).status,
    200,
  );
  assertEquals((await call("DELETE", `/v1/sessions/${mine.id}`, undefined, "bob:y")).status, 204);
});

Deno.test("authentication on: sessions belong to the user, from any address", async () => {
  const { call } = setup();
  const other = parseIp("198.18.30.3")!;
  const mine = (await call("POST", "/v1/sessions", { destination: "198.19.1.1" })).body;
  const listed = await call("GET", "/v1/sessions", undefined, "alice:pw", other);
  assertEquals(listed.body.map((s: { id: string }) => s.id), [mine.id]);
  assertEquals(
    (await call("POST", `/v1/sessions/${mine.id}/keepalive`, undefined, "alice:pw", other)).status,
    200,
  );
});

Deno.test("no credentials at all is a 401 challenge, not a guess: it never holds the address back", async () => {
  const { api, call } = setup();
  for (let i = 0; i < 20; i++) {
    const challenged = await call("GET", "/metrics", undefined, null);
    assertEquals(challenged.status, 401);
  }
  assertEquals(api.metrics.authFailures, 0);
  assertEquals((await call("GET", "/metrics")).status, 200);
  // A wrong password still counts.
  assertEquals((await call("GET", "/metrics", undefined, "alice:wrong")).status, 401);
  assertEquals(api.metrics.authFailures, 1);
});

Deno.test("a resolver that fails is refused like a name without addresses, and its error is logged", async () => {
  const { call, log } = setup();
  const r = await call("POST", "/v1/sessions", { destination: "broken.example" });
  assertEquals(r.status, 400);
  assertMatch(r.body.error, /cannot resolve broken\.example/);
  assertEquals(
    log.records.some((l) =>
      l.level === "debug" && l.text === "Cannot resolve broken.example: SERVFAIL"
    ),
    true,
  );
});
