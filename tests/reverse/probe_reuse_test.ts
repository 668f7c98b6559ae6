import { assertEquals } from "../_assert.ts";
import { reusingProber } from "../../src/reverse/probe_reuse.ts";
import type { ProbeOutcome } from "../../src/ssh/probe.ts";
import { parseIpEndpoint } from "../../src/net/endpoint.ts";

const A = parseIpEndpoint("198.18.2.2:22", 22) as Exclude<
  ReturnType<typeof parseIpEndpoint>,
  string
>;
const B = parseIpEndpoint("198.18.2.3:22", 22) as typeof A;
const ANSWER: ProbeOutcome = { kind: "answered", banner: "SSH-2.0-x", hostKey: new Uint8Array(3) };
const REFUSED: ProbeOutcome = {
  kind: "failed",
  reason: "unreachable",
  message: "Cannot connect to 198.18.2.2:22: connection refused",
};

function setup(outcomes: ProbeOutcome[] = [], reachable = true) {
  let clock = 1000;
  const calls: string[] = [];
  const timeouts: number[] = [];
  let release: () => void = () => {};
  const gate = { held: false };
  const state = { reachable };
  const probe = reusingProber(
    async (endpoint, algorithms, timeoutMs) => {
      calls.push(`probe ${endpoint.ip.text} ${algorithms.join(",")}`);
      timeouts.push(timeoutMs);
      if (gate.held) await new Promise<void>((resolve) => (release = resolve));
      return outcomes.shift() ?? ANSWER;
    },
    {
      now: () => clock,
      windowMs: 30_000,
      refreshMs: 15_000,
      freshMs: 2_000,
      reach: (endpoint) => {
        calls.push(`reach ${endpoint.ip.text}`);
        return Promise.resolve(state.reachable ? undefined : REFUSED);
      },
    },
  );
  return {
    probe,
    calls,
    timeouts,
    gate,
    state,
    release: () => release(),
    advance: (ms: number) => void (clock += ms),
  };
}

Deno.test("sessions asking while a server is probed share that one probe", async () => {
  const bed = setup();
  bed.gate.held = true;
  const asked = [bed.probe(A, ["ssh-ed25519"], 3000), bed.probe(A, ["ssh-ed25519"], 3000)];
  await new Promise((resolve) => setTimeout(resolve, 0));
  bed.release();
  assertEquals(await Promise.all(asked), [ANSWER, ANSWER]);
  assertEquals(bed.calls, ["probe 198.18.2.2 ssh-ed25519"]);
});

Deno.test("a session that joined a probe which ran out of time probes again with its own time", async () => {
  const TIMEOUT: ProbeOutcome = {
    kind: "failed",
    reason: "timeout",
    message: "No SSH answer from 198.18.2.2:22 within 3 s",
  };
  const bed = setup([TIMEOUT]);
  bed.gate.held = true;
  const first = bed.probe(A, ["ssh-ed25519"], 3000);
  await new Promise((resolve) => setTimeout(resolve, 0));
  bed.advance(2000);
  const joined = bed.probe(A, ["ssh-ed25519"], 3000);
  await new Promise((resolve) => setTimeout(resolve, 0));
  bed.advance(1000);
  bed.gate.held = false;
  bed.release();
  // The starter's time is up; the one that joined 2 s later still has 2 s and tries again.
  assertEquals(await first, TIMEOUT);
  assertEquals(await joined, ANSWER);
  assertEquals(bed.calls, ["probe 198.18.2.2 ssh-ed25519", "probe 198.18.2.2 ssh-ed25519"]);
  assertEquals(bed.timeouts, [3000, 2000]);
});

Deno.test("within the window an answer is reused after a bare connect; after it, probed again", async () => {
  const bed = setup();
  await bed.probe(A, ["ssh-ed25519"], 3000);
  // Checked 1 s ago: reused as it is.
  bed.advance(1_000);
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 3000), ANSWER);
  bed.advance(13_000);
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 3000), ANSWER);
  assertEquals(bed.calls, ["probe 198.18.2.2 ssh-ed25519", "reach 198.18.2.2"]);
  // No session for the rest of the window: the connect 16 s later stands, but not for the probe,
  // which the session 30 s after it waits for.
  bed.advance(16_000);
  bed.gate.held = true;
  let settled = false;
  const late = bed.probe(A, ["ssh-ed25519"], 3000).then((o) => (settled = true, o));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(settled, false, "a session after the window did not wait for the probe");
  bed.release();
  assertEquals(await late, ANSWER);
  assertEquals(bed.calls, [
    "probe 198.18.2.2 ssh-ed25519",
    "reach 198.18.2.2",
    "probe 198.18.2.2 ssh-ed25519",
  ]);
});

Deno.test("an answer older than the refresh age is probed again behind the session that reuses it", async () => {
  const SOON: ProbeOutcome = { kind: "answered", banner: "SSH-2.0-refreshed" };
  const bed = setup([ANSWER, SOON]);
  await bed.probe(A, ["ssh-ed25519"], 3000);
  bed.advance(15_000);
  bed.gate.held = true;
  // The session gets the answer it found, after a bare connect, while the probe still runs.
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 3000), ANSWER);
  assertEquals(bed.calls, [
    "probe 198.18.2.2 ssh-ed25519",
    "probe 198.18.2.2 ssh-ed25519",
    "reach 198.18.2.2",
  ]);
  // Sessions meanwhile start no second probe; the refreshed answer serves the 30 s from its start.
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 3000), ANSWER);
  assertEquals(bed.calls.length, 3);
  bed.gate.held = false;
  bed.release();
  await new Promise((resolve) => setTimeout(resolve, 0));
  bed.advance(29_000);
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 3000), SOON);
  // 29 s old: refreshed again behind this session, which only connected.
  assertEquals(bed.calls, [
    "probe 198.18.2.2 ssh-ed25519",
    "probe 198.18.2.2 ssh-ed25519",
    "reach 198.18.2.2",
    "probe 198.18.2.2 ssh-ed25519",
    "reach 198.18.2.2",
  ]);
});

Deno.test("a background probe begun before its server was found down neither serves nor restores its answer", async () => {
  let clock = 0;
  const calls: string[] = [];
  const pending: Array<(outcome: ProbeOutcome) => void> = [];
  let reachable = true;
  const probe = reusingProber(() => {
    calls.push("probe");
    return new Promise((resolve) => pending.push(resolve));
  }, {
    now: () => clock,
    windowMs: 30_000,
    refreshMs: 15_000,
    freshMs: 2_000,
    reach: () => {
      calls.push("reach");
      return Promise.resolve(reachable ? undefined : REFUSED);
    },
  });
  const turn = () => new Promise((resolve) => setTimeout(resolve, 0));
  const first = probe(A, ["ssh-ed25519"], 3000);
  pending.shift()!(ANSWER);
  await first;
  // 16 s later the server stops accepting: the refresh starts, the connect check is refused.
  clock += 16_000;
  reachable = false;
  assertEquals(await probe(A, ["ssh-ed25519"], 3000), REFUSED);
  assertEquals(calls, ["probe", "probe", "reach"]);
  const refresh = pending.shift()!;
  // The next session probes afresh rather than joining the refresh begun before the refusal.
  const next = probe(A, ["ssh-ed25519"], 3000);
  await turn();
  assertEquals(calls, ["probe", "probe", "reach", "probe"]);
  // The refresh had connected before the server stopped: it answers, and is not kept.
  refresh(ANSWER);
  await turn();
  pending.shift()!(REFUSED);
  assertEquals(await next, REFUSED);
  const after = probe(A, ["ssh-ed25519"], 3000);
  await turn();
  assertEquals(calls, ["probe", "probe", "reach", "probe", "probe"]);
  pending.shift()!(ANSWER);
  assertEquals(await after, ANSWER);
});

Deno.test("a refresh that fails makes the next session probe in full; one that throws is caught", async () => {
  const bed = setup([ANSWER, REFUSED]);
  await bed.probe(A, ["ssh-ed25519"], 3000);
  bed.advance(20_000);
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 2500), ANSWER);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 3000), ANSWER);
  assertEquals(bed.calls.filter((c) => c.startsWith("probe")).length, 3);
  // The refresh had the whole time of the session that started it.
  assertEquals(bed.timeouts, [3000, 2500, 3000]);

  let clock = 0;
  let throwing = false;
  let probes = 0;
  const probe = reusingProber(() => {
    probes++;
    if (throwing) return Promise.reject(new Error("socket gone"));
    return Promise.resolve(ANSWER);
  }, {
    now: () => clock,
    windowMs: 30_000,
    refreshMs: 15_000,
    freshMs: 2_000,
    reach: () => Promise.resolve(undefined),
  });
  await probe(A, ["ssh-ed25519"], 3000);
  clock += 16_000;
  throwing = true;
  // An unhandled rejection here would fail the test.
  assertEquals(await probe(A, ["ssh-ed25519"], 3000), ANSWER);
  await new Promise((resolve) => setTimeout(resolve, 0));
  throwing = false;
  clock += 1_000;
  assertEquals(await probe(A, ["ssh-ed25519"], 3000), ANSWER);
  assertEquals(probes, 3, "the session after a refresh that threw did not probe in full");
});

Deno.test("a host that stopped accepting fails at its next check, and its answer is forgotten", async () => {
  const bed = setup();
  await bed.probe(A, ["ssh-ed25519"], 3000);
  bed.advance(2_000);
  bed.state.reachable = false;
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 3000), REFUSED);
  bed.state.reachable = true;
  await bed.probe(A, ["ssh-ed25519"], 3000);
  assertEquals(bed.calls, [
    "probe 198.18.2.2 ssh-ed25519",
    "reach 198.18.2.2",
    "probe 198.18.2.2 ssh-ed25519",
  ]);
});

Deno.test("failures are never reused; servers and pinned key types are told apart", async () => {
  const bed = setup([REFUSED]);
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 3000), REFUSED);
  assertEquals(await bed.probe(A, ["ssh-ed25519"], 3000), ANSWER);
  await bed.probe(A, ["rsa-sha2-256"], 3000);
  await bed.probe(B, ["ssh-ed25519"], 3000);
  assertEquals(bed.calls, [
    "probe 198.18.2.2 ssh-ed25519",
    "probe 198.18.2.2 ssh-ed25519",
    "probe 198.18.2.2 rsa-sha2-256",
    "probe 198.18.2.3 ssh-ed25519",
  ]);
});

Deno.test("sessions asking during a connect check share it; a slow host keeps its answer, a refusing one loses it", async () => {
  let clock = 1000;
  const calls: string[] = [];
  const reaches: Array<(outcome: ProbeOutcome | undefined) => void> = [];
  const probe = reusingProber(
    (endpoint) => {
      calls.push(`probe ${endpoint.ip.text}`);
      return Promise.resolve(ANSWER);
    },
    {
      now: () => clock,
      windowMs: 30_000,
      refreshMs: 15_000,
      freshMs: 2_000,
      reach: (endpoint) => {
        calls.push(`reach ${endpoint.ip.text}`);
        return new Promise((resolve) => reaches.push(resolve));
      },
    },
  );
  assertEquals(await probe(A, ["ssh-ed25519"], 3000), ANSWER);
  clock += 5_000;
  const together = [probe(A, ["ssh-ed25519"], 3000), probe(A, ["ssh-ed25519"], 3000)];
  await new Promise((resolve) => setTimeout(resolve, 0));
  const TIMEOUT: ProbeOutcome = {
    kind: "failed",
    reason: "timeout",
    message: "No connection to 198.18.2.2:22 within 3 s",
  };
  reaches.shift()!(TIMEOUT);
  assertEquals(await Promise.all(together), [TIMEOUT, TIMEOUT]);
  assertEquals(calls, ["probe 198.18.2.2", "reach 198.18.2.2"]);
  // Only slow: the next session checks again with a bare connect, no new handshake.
  const next = probe(A, ["ssh-ed25519"], 3000);
  await new Promise((resolve) => setTimeout(resolve, 0));
  reaches.shift()!(REFUSED);
  assertEquals(await next, REFUSED);
  assertEquals(calls.at(-1), "reach 198.18.2.2");
  // Refused: the host is down, and the next session probes it in full.
  assertEquals(await probe(A, ["ssh-ed25519"], 3000), ANSWER);
  assertEquals(calls.at(-1), "probe 198.18.2.2");
});
