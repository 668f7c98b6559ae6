import { assertEquals, assertMatch, assertRejects } from "../_assert.ts";
import { type DnatPlatform, runDnat } from "../../src/dnat/run.ts";
import { dnatMode } from "../../src/dnat/command.ts";
import { dnatArgv, parseAddReply } from "../../src/dnat/contract.ts";
import { NotAuthorizedError } from "../../src/dnat/authorize.ts";
import { createFakeFs } from "../_fakes/fs.ts";
import { fakeDnatDeps } from "../_fakes/dnat.ts";
import { recordLogs } from "../_fakes/logs.ts";
import { captureOutput } from "../_fakes/output.ts";
import { parseInline } from "../config/_load.ts";
import { addRequest, endpoint } from "./_build.ts";

const SYSTEM_CONFIG = `<server><state_directory>/s</state_directory><rproxy><enabled>true</enabled>
<rules><rule host_ip="198.18.1.1"><host>198.18.2.2</host><keyfile>/k</keyfile>
<src_port_filtering>false</src_port_filtering></rule></rules></rproxy></server>`;
// What a caller might point --config at: a rule that would allow any server.
const CALLERS_CONFIG = SYSTEM_CONFIG.replace("198.18.2.2", "198.18.2.99");

/** A platform over the fake manager deps; `events` records the service's life. */
function fakePlatform() {
  const fakes = fakeDnatDeps(parseInline(SYSTEM_CONFIG).config!);
  const events: string[] = [];
  const logs = recordLogs(events);
  const stop = new AbortController();
  const platform: DnatPlatform = {
    fs: createFakeFs({
      "/etc/xferproxy/aspera.conf": CALLERS_CONFIG,
      "/a.conf": SYSTEM_CONFIG,
      "/evil.conf": CALLERS_CONFIG,
    }),
    trustedFs: createFakeFs({ "/etc/xferproxy/aspera.conf": SYSTEM_CONFIG }),
    openLogs: (service) => (directory) => {
      events.push(`stderr ${service}`);
      return logs.open(directory);
    },
    prepareDirectory: (state) => Promise.resolve(`${state}/dnat`),
    dnatDeps: (config, _dir, log) => ({ ...fakes.deps, config, log }),
    serviceHost: () => {
      events.push("service host");
      return {
        stop: stop.signal,
        heartbeat: () => Promise.resolve(void stop.abort()),
        enableAccounting: () => Promise.resolve(false),
        close: () => Promise.resolve(void events.push("service closed")),
      };
    },
  };
  return { platform, fakes, events, logs };
}

const SUDO = { SUDO_UID: "1001", SUDO_COMMAND: "/usr/bin/xferproxy dnat add --session x" };

async function dnat(
  platform: DnatPlatform,
  argv: string[],
  env: Record<string, string> = {},
) {
  const output = captureOutput();
  const context = { output, self: "/usr/bin/xferproxy", env: (name: string) => env[name] };
  let error: unknown;
  const status = await runDnat(dnatMode.parse(argv), platform, context).catch((e) => {
    error = e;
    return undefined;
  });
  return { status, error, output };
}

Deno.test("dnat add answers its contract's installed event and installs the session", async () => {
  const { platform, fakes, events } = fakePlatform();
  fakes.processes.running.set(77, { uid: 0, start: 1 });
  const request = addRequest({ owner: 77 });
  const { status, output } = await dnat(platform, [
    ...dnatArgv({ action: "add", request }).slice(1),
    "--config",
    "/a.conf",
  ]);
  assertEquals(status, 0);
  assertEquals(parseAddReply(output.stdout), {
    event: "installed",
    proxy: "198.18.1.1:33001",
    server: "198.18.2.2:33001",
    filtering: false,
  });
  assertEquals([...fakes.backend.kernel.keys()], [request.id]);
  assertEquals([events[0], events.at(-1)], ["stderr false", "close"]);
});

Deno.test("through sudo only the trusted system config counts; a refusal is a refused event", async () => {
  const { platform, fakes, logs } = fakePlatform();
  fakes.processes.running.set(77, { uid: 1001, start: 1 });
  fakes.processes.connections.set(77, "198.18.1.2 50000 198.18.1.1 22");
  // Allowed by the config the caller would choose, not by the system's.
  const wrong = addRequest({ owner: 77, server: endpoint("198.18.2.99:22") });
  const { status, error, output } = await dnat(
    platform,
    [...dnatArgv({ action: "add", request: wrong }).slice(1), "--config", "/evil.conf"],
    { ...SUDO, XFERPROXY_CONFIG: "/evil.conf" },
  );
  assertEquals(status, undefined);
  assertEquals(error instanceof NotAuthorizedError, true);
  assertEquals(parseAddReply(output.stdout)?.event, "refused");
  assertMatch((error as NotAuthorizedError).userMessage, /^dnat refused: /);
  assertMatch(logs.lines().join("\n"), /dnat add failed: /);
  assertEquals(fakes.backend.kernel.size, 0);
});

Deno.test("dnat serve refuses a sudo caller before anything runs", async () => {
  const { platform, events } = fakePlatform();
  const { error } = await dnat(platform, ["serve"], {
    SUDO_UID: "1001",
    SUDO_COMMAND: "/usr/bin/xferproxy dnat serve",
  });
  assertEquals(error instanceof NotAuthorizedError, true);
  assertEquals(events.includes("service host"), false);
});

Deno.test("dnat serve logs to stderr too, runs until stopped, then releases its host", async () => {
  const { platform, events, logs } = fakePlatform();
  const { status } = await dnat(platform, ["serve", "--config", "/a.conf"]);
  assertEquals(status, 0);
  assertEquals(events[0], "stderr true");
  assertMatch(logs.lines().join("\n"), /DNAT service started/);
  assertEquals(events.slice(-2), ["service closed", "close"]);
});

Deno.test("a failing dnat del still closes the log and is a user error", async () => {
  const { platform, events } = fakePlatform();
  const { error } = await dnat(platform, ["del", "--session", crypto.randomUUID()]);
  await assertRejects(() => Promise.reject(error), NotAuthorizedError, "no DNAT session");
  assertEquals(events.at(-1), "close");
});
