import { assertEquals, assertIncludes } from "../_assert.ts";
import { getLogger } from "@logtape/logtape";
import { Buffer } from "node:buffer";
import { decideSession, type ReverseDeps } from "../../src/reverse/session.ts";
import type { Registering, Registrar } from "../../src/reverse/registrar.ts";
import { requestFromCommand, type SessionInputs } from "../../src/reverse/inputs.ts";
import { balancerPicker, createBalancer } from "../../src/balancer/balancer.ts";
import type { SharedJson } from "../../src/balancer/shared_json.ts";
import type { ProbeOutcome } from "../../src/ssh/probe.ts";
import { parseIp } from "../../src/net/ip.ts";
import { formatEndpoint } from "../../src/net/endpoint.ts";
import { parseInline } from "../config/_load.ts";
import { createFakeFs, type FakeFile } from "../_fakes/fs.ts";
import { fakeKeyBlob } from "../_fakes/ssh_server.ts";

const KEY_A = fakeKeyBlob("ssh-ed25519", 1);
const KEY_B = fakeKeyBlob("ssh-ed25519", 2);
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const PRIVATE_KEY = Deno.readTextFileSync(
  new URL("../fixtures/keys/openssh_plain", import.meta.url),
);

const config = parseInline(`<server><state_directory>/s</state_directory><rproxy>
<enabled>true</enabled><known_hosts>/kh</known_hosts>
<rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><squash_user>xfer</squash_user><keyfile>/k/squash</keyfile></rule>
<rule host_ip="198.18.1.17"><hosts><host>198.18.2.2</host><host>198.18.2.3</host></hosts><keyfile>/home/$(user)/id</keyfile></rule>
</rules></rproxy></server>`).config!;

function inputs(command: string | undefined, proxy = "198.18.1.1"): SessionInputs {
  return {
    user: "bear",
    clientIp: parseIp("198.18.1.2")!,
    clientPort: 50000,
    proxyIp: parseIp(proxy)!,
    proxyPort: 22,
    request: requestFromCommand(command),
  };
}

function memoryJson(): SharedJson & { value: unknown } {
  const store = {
    value: undefined as unknown,
    update<T>(change: (current: unknown) => { value: unknown; result: T }): Promise<T> {
      const { value, result } = change(store.value);
      store.value = value;
      return Promise.resolve(result);
    },
  };
  return store;
}

/** Deps with a probe answering per server; `files` override the fake file system. */
function setup(
  answers: Record<string, ProbeOutcome>,
  files: Record<string, string | FakeFile> = {},
  draining = false,
) {
  const told: string[] = [];
  const probed: string[] = [];
  const registered: Registering[] = [];
  const state = memoryJson();
  const closed: string[] = [];
  const registrar: Registrar = {
    id: "3a9fd819-59c3-42bc-b0a2-d26304a1eb84",
    via: "service",
    ...(draining ? { draining: true as const } : {}),
    hosts: balancerPicker(createBalancer(state, () => 1_800_000_000_000)),
    register: (session) => {
      registered.push(session);
      return Promise.resolve(session.udp ? "forwarded" : "none");
    },
    close: () => void closed.push("closed"),
  };
  const deps: ReverseDeps = {
    fs: createFakeFs({
      "/k/squash": { text: PRIVATE_KEY, uid: 0, mode: 0o100640 },
      "/home/bear/id": { text: PRIVATE_KEY, uid: 1001, mode: 0o100600 },
      "/kh": `198.18.2.2 ssh-ed25519 ${b64(KEY_A)}\n198.18.2.3 ssh-ed25519 ${b64(KEY_B)}\n`,
      ...files,
    }),
    pid: 4242,
    uid: 1001,
    registrar: () => Promise.resolve(registrar),
    probe: (endpoint) => {
      probed.push(formatEndpoint(endpoint));
      return Promise.resolve(
        answers[formatEndpoint(endpoint)] ??
          { kind: "failed", reason: "unreachable", message: "no answer" },
      );
    },
    pty: false,
    env: (name) => ({ USER: "bear", HOME: "/home/bear" } as Record<string, string>)[name],
    tellClient: (line) => void told.push(line),
    log: getLogger(["xferproxy", "test"]),
  };
  return { deps, told, probed, registered, state, closed };
}

const answered = (key: Uint8Array): ProbeOutcome => ({
  kind: "answered",
  banner: "SSH-2.0-x",
  hostKey: key,
});

const described = (registered: Registering[]) =>
  registered.map((s) => [s.udp, s.user, s.rule.index, s.upstreamIndex, s.upstream.ip.text]);

Deno.test("a scp session is handed to ssh for the rule's server and account, registered without UDP", async () => {
  const { deps, probed, registered, told, closed } = setup({ "198.18.2.2:22": answered(KEY_A) });
  const outcome = await decideSession(inputs("scp -t /in"), config, deps);
  assertEquals(outcome.kind, "handoff");
  if (outcome.kind !== "handoff") return;
  const argv = outcome.handoff.argv;
  assertEquals(argv.slice(-5), ["xfer", "-T", "--", "198.18.2.2", "scp -t /in"]);
  assertIncludes(argv.join(" "), 'IdentityFile="/k/squash"');
  assertEquals([probed, told], [["198.18.2.2:22"], []]);
  // Registered for its closing line, and the link closed before the hand-off.
  assertEquals(described(registered), [[false, "bear", 1, 0, "198.18.2.2"]]);
  assertEquals(closed, ["closed"]);
});

Deno.test("an ascp session registers UDP forwarding before the hand-off", async () => {
  const { deps, registered } = setup({ "198.18.2.2:22": answered(KEY_A) });
  const outcome = await decideSession(inputs("ascp -S. -V1"), config, deps);
  assertEquals(outcome.kind, "handoff");
  assertEquals(described(registered), [[true, "bear", 1, 0, "198.18.2.2"]]);
});

Deno.test("a drained node refuses a new session with one line, before probing or registering", async () => {
  const { deps, probed, registered, told, closed } = setup(
    { "198.18.2.2:22": answered(KEY_A) },
    {},
    true,
  );
  const outcome = await decideSession(inputs("ascp -S. -V1"), config, deps);
  assertEquals(outcome, { kind: "exit", exitCode: 255 });
  assertEquals([probed, registered, closed], [[], [], ["closed"]]);
  assertEquals(told, [
    "xferproxy: this proxy is not taking new sessions (drained for maintenance); connect again",
  ]);
});

Deno.test("a refused command probes nothing, registers nothing, and exits 1", async () => {
  const { deps, probed, registered, told } = setup({});
  const outcome = await decideSession(inputs("sh -c id"), config, deps);
  assertEquals(outcome, { kind: "exit", exitCode: 1 });
  assertEquals([probed, registered, told], [[], [], ['xferproxy: command "sh" is not allowed']]);
});

Deno.test("failover: a server that does not answer is marked faulty and the next one serves", async () => {
  const { deps, probed, state } = setup({ "198.18.2.3:22": answered(KEY_B) });
  const outcome = await decideSession(inputs("scp -t /in", "198.18.1.17"), config, deps);
  assertEquals(outcome.kind, "handoff");
  if (outcome.kind === "handoff") assertEquals(outcome.handoff.argv.at(-2), "198.18.2.3");
  assertEquals(probed, ["198.18.2.2:22", "198.18.2.3:22"]);
  const faulty = (state.value as { faulty: Record<string, number> }).faulty;
  assertEquals(Object.keys(faulty), ["198.18.2.2:22"]);
});

Deno.test("a changed host key refuses the session with no failover", async () => {
  const { deps, probed, told } = setup({
    "198.18.2.2:22": answered(KEY_B),
    "198.18.2.3:22": answered(KEY_B),
  });
  const outcome = await decideSession(inputs("scp -t /in", "198.18.1.17"), config, deps);
  assertEquals(outcome, { kind: "exit", exitCode: 255 });
  assertEquals(probed, ["198.18.2.2:22"]);
  assertEquals(told, ["xferproxy: host key verification of the internal server failed"]);
});

Deno.test("keys ssh could not use are refused before the hand-off", async () => {
  const encrypted = Deno.readTextFileSync(
    new URL("../fixtures/keys/openssh_encrypted", import.meta.url),
  );
  const cases: Array<[Record<string, FakeFile>]> = [
    [{ "/k/squash": { text: encrypted, uid: 0, mode: 0o100640 } }],
    [{ "/home/bear/id": { text: PRIVATE_KEY, uid: 1001, mode: 0o100644 } }],
  ];
  for (const [files] of cases) {
    const { deps, probed, told } = setup(
      { "198.18.2.2:22": answered(KEY_A) },
      files,
    );
    const proxy = "/home/bear/id" in files ? "198.18.1.17" : "198.18.1.1";
    assertEquals(await decideSession(inputs("scp -t /in", proxy), config, deps), {
      kind: "exit",
      exitCode: 255,
    });
    assertEquals([probed, told], [[], [
      "xferproxy: cannot log in to the internal server (proxy key problem)",
    ]]);
  }
});
