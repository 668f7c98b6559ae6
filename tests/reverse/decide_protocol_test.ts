import { assertEquals } from "../_assert.ts";
import {
  decideLine,
  decideReplyLine,
  MAX_ENV_VALUE,
  parseDecideReply,
  parseDecideRequest,
  serviceSocketOf,
  thinArgs,
} from "../../src/reverse/decide_protocol.ts";
import { parseRequest } from "../../src/dnat/service_protocol.ts";
import { THIN_DEFAULTS } from "../../src/platform/thin_session.ts";
import { DEFAULT_CONFIG_PATH, SERVER } from "../../src/config/spec.ts";

const CONFIG = { dev: 2049, ino: 77 };

Deno.test("a decide request crosses the wire as the service parses it", () => {
  const line = decideLine({ config: CONFIG, pty: true, env: { USER: "bear", TERM: "xterm" } });
  assertEquals(parseRequest(line.trimEnd()), {
    op: "decide",
    config: CONFIG,
    pty: true,
    env: { USER: "bear", TERM: "xterm" },
  });
});

Deno.test("a decide request with anything but the decision's variables, or malformed, is refused", () => {
  const base = { op: "decide", config: CONFIG, pty: false, env: { USER: "bear" } };
  const refused = [
    { ...base, env: { USER: "bear", LD_PRELOAD: "/tmp/x.so" } },
    { ...base, env: { USER: 7 } },
    { ...base, env: { SSH_ORIGINAL_COMMAND: "x".repeat(MAX_ENV_VALUE + 1) } },
    { ...base, env: { USER: "be\0ar" } },
    { ...base, env: ["USER"] },
    { ...base, config: { dev: -1, ino: 77 } },
    { ...base, config: { dev: 1 } },
    { ...base, pty: "yes" },
  ];
  for (const request of refused) {
    assertEquals(parseDecideRequest(request as Record<string, unknown>), undefined);
  }
  assertEquals(parseDecideRequest(base)?.env, { USER: "bear" });
});

Deno.test("the session accepts a decision to exec or to exit, never both, and a fallback", () => {
  const handoff = { path: "/usr/bin/ssh", argv: ["xferproxy-ssh", "-T"], env: ["PATH=/usr/bin"] };
  const exec = decideReplyLine({ op: "decided", tell: [], handoff });
  assertEquals(parseDecideReply(exec.trimEnd()), { op: "decided", tell: [], handoff });
  const exit = decideReplyLine({ op: "decided", tell: ["xferproxy: no"], exit: 1 });
  assertEquals(parseDecideReply(exit), { op: "decided", tell: ["xferproxy: no"], exit: 1 });
  assertEquals(parseDecideReply('{"op":"fallback","reason":"other config"}'), {
    op: "fallback",
    reason: "other config",
  });
  const malformed = [
    { op: "decided", tell: [], handoff, exit: 0 },
    { op: "decided", tell: [], exit: 256 },
    { op: "decided", tell: [], handoff: { ...handoff, path: "ssh" } },
    { op: "decided", tell: [], handoff: { ...handoff, argv: [] } },
    { op: "decided", tell: [1], exit: 0 },
    { op: "decided", tell: [] },
    { op: "hello", session: "x" },
  ];
  for (const reply of malformed) assertEquals(parseDecideReply(JSON.stringify(reply)), undefined);
  assertEquals(parseDecideReply("not json"), undefined);
  assertEquals(parseDecideReply("null"), undefined);
});

Deno.test("only a plain session takes the light path: reverse, with or without --config", () => {
  assertEquals(thinArgs(["reverse"]), {});
  assertEquals(thinArgs(["reverse", "--config", "/etc/x.conf"]), { configPath: "/etc/x.conf" });
  assertEquals(thinArgs(["reverse", "--config=/etc/x.conf"]), { configPath: "/etc/x.conf" });
  for (
    const args of [
      ["reverse", "--help"],
      ["reverse", "--config"],
      ["reverse", "--config="],
      ["reverse", "extra"],
      ["check"],
      [],
    ]
  ) assertEquals(thinArgs(args), undefined);
});

Deno.test("the service's socket is read from the config text, comments aside", () => {
  assertEquals(serviceSocketOf("<server><rproxy/></server>"), undefined);
  assertEquals(
    serviceSocketOf("<server><service_socket> /run/x/s.sock </service_socket></server>"),
    "/run/x/s.sock",
  );
  assertEquals(
    serviceSocketOf(
      "<!-- <service_socket>/tmp/old</service_socket> --><service_socket>/run/a</service_socket>",
    ),
    "/run/a",
  );
});

Deno.test("the light path's defaults are the config's", () => {
  assertEquals(THIN_DEFAULTS.config, DEFAULT_CONFIG_PATH);
  assertEquals(THIN_DEFAULTS.socket, SERVER.service_socket.default);
});
