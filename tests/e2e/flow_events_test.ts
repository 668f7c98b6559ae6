/**
 * The DNAT service's conntrack event stream (platform/flow_events.ts) against the real
 * conntrack, in a namespace the test creates: a flow our rules marked is reported, another is
 * not, and a stream that dies is said once and started again.
 */
import { assertEquals, assertIncludes } from "../_assert.ts";
import { must, run, waitFor } from "../testbed/exec.ts";
import { addNamespaces } from "../testbed/netns.ts";
import { namespaceName } from "../testbed/prefix.ts";
import { PYTHON, ROOT, tempDir } from "../testbed/paths.ts";
import { type FollowedFlows, followFlowEvents } from "../../src/platform/flow_events.ts";
import { SESSION_CT_MARK } from "../../src/dnat/types.ts";
import { fakeLogger } from "../_fakes/logger.ts";

const ADDRESS = "198.18.77.1";

Deno.test({
  name: "new flows our rules marked are reported as they appear; a stream that dies comes back",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cleanups: Array<() => Promise<unknown>> = [];
    const ns = namespaceName("fe");
    const dir = await tempDir();
    const log = fakeLogger();
    let flows: FollowedFlows | undefined;
    try {
      await addNamespaces([ns], cleanups);
      const inNs = (...argv: string[]) => must(["ip", "netns", "exec", ns, ...argv]);
      await inNs("ip", "addr", "add", `${ADDRESS}/32`, "dev", "lo");
      // Marked as our DNAT rules mark a session's flow: port 33001 only.
      await inNs(
        "iptables",
        "-t",
        "mangle",
        "-A",
        "OUTPUT",
        "-p",
        "udp",
        "--dport",
        "33001",
        "-j",
        "CONNMARK",
        "--set-xmark",
        `0x${SESSION_CT_MARK.toString(16)}/0xffffffff`,
      );
      const conntrack = `${dir.path}/conntrack`;
      await Deno.writeTextFile(conntrack, `#!/bin/sh\nexec ip netns exec ${ns} conntrack "$@"\n`, {
        mode: 0o755,
      });
      let port = 41000;
      /** One datagram from a new source port: a new flow. */
      const send = (dport: number) =>
        inNs(
          PYTHON,
          "-c",
          `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("${ADDRESS}", ${port++})); s.sendto(b"x", ("${ADDRESS}", ${dport}))`,
        );
      /** Sends new marked flows until one is reported (the stream subscribes after it starts). */
      const reported = async () => {
        const last: { taken: ReturnType<FollowedFlows["take"]> } = { taken: [] };
        await waitFor("a marked flow reported", async () => {
          await send(33001);
          await new Promise((resolve) => setTimeout(resolve, 100));
          last.taken = flows!.take();
          return last.taken.length > 0;
        });
        assertEquals(last.taken, [{ src: ADDRESS, dst: ADDRESS, dport: 33001 }]);
      };

      flows = followFlowEvents(log, conntrack, 300);
      assertEquals(flows.live(), true);
      await reported();
      // Reported once: taken, it is not reported again.
      assertEquals(flows.take(), []);
      // A flow our rules did not mark is not a session's.
      await send(33002);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assertEquals(flows.take(), []);

      // The stream dies (killed, as an OOM killer might): said once, started again.
      const pids = (await must(["ip", "netns", "pids", ns])).trim().split("\n").filter(Boolean);
      assertEquals(pids.length, 1, "only the stream runs in the namespace");
      await run(["kill", "-9", pids[0]!]);
      await waitFor("the stream seen gone", () => Promise.resolve(!flows!.live()));
      const stopped = log.records.filter((r) => r.text.startsWith("conntrack's events"));
      assertEquals(stopped.length, 1);
      assertIncludes(String(stopped[0]!.fields.why), "exited with SIGKILL");
      // Said back once it has kept running as long as a restart's pause.
      await waitFor("the stream said back", () =>
        Promise.resolve(
          flows!.live() &&
            log.records.some((r) =>
              r.text.startsWith("Following conntrack's events for new flows again")
            ),
        ));
      await reported();

      await flows.close();
      assertEquals(flows.live(), false);
      assertEquals((await must(["ip", "netns", "pids", ns])).trim(), "", "the stream is gone");
    } finally {
      await flows?.close();
      for (const cleanup of cleanups.reverse()) await cleanup();
      await dir.remove();
    }
  },
});

Deno.test("a stream that exits at once, again and again, is said once", async () => {
  const dir = await tempDir();
  const log = fakeLogger();
  const broken = `${dir.path}/conntrack`;
  await Deno.writeTextFile(broken, "#!/bin/sh\necho 'conntrack: no event support' >&2\nexit 1\n", {
    mode: 0o755,
  });
  const flows = followFlowEvents(log, broken, 100);
  try {
    // Five restarts or so: each fails alike.
    await new Promise((resolve) => setTimeout(resolve, 700));
    const said = log.records.map((r) => r.text.split(" (")[0]);
    assertEquals(said, ["conntrack's events for new flows stopped"]);
    assertIncludes(
      String(log.records[0]!.fields.why),
      "exited with 1: conntrack: no event support",
    );
  } finally {
    await flows.close();
    await dir.remove();
  }
});

Deno.test("events turned off: no stream, said once; turned on, it starts; off again, it stops", async () => {
  const dir = await tempDir();
  const log = fakeLogger();
  const standIn = `${dir.path}/conntrack`;
  const started = `${dir.path}/started`;
  // It ignores SIGTERM (kept across exec), as a stuck stream would: it must be killed anyway.
  await Deno.writeTextFile(
    standIn,
    `#!/bin/sh\ntrap '' TERM\necho $$ >>${started}\nexec sleep 30\n`,
    {
      mode: 0o755,
    },
  );
  let off: string | undefined = "net.netfilter.nf_conntrack_events is 0: set it to 2";
  const flows = followFlowEvents(log, standIn, 100, () => off);
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    assertEquals(flows.live(), false);
    assertEquals(await Deno.stat(started).then(() => true, () => false), false);
    assertEquals(log.records.map((r) => r.text.split(" (")[0]), [
      "conntrack's events for new flows stopped",
    ]);
    assertIncludes(String(log.records[0]!.fields.why), "nf_conntrack_events is 0");
    off = undefined;
    await waitFor("the stream started", () => Promise.resolve(flows.live()));
    const pid = Number((await Deno.readTextFile(started)).trim());
    await waitFor("the stream said back", () =>
      Promise.resolve(
        log.records.some((r) => r.text.startsWith("Following conntrack's events")),
      ));
    // Turned off while it runs (sysctl.d once the module loaded, or by hand): stopped, and said.
    off = "net.netfilter.nf_conntrack_events is 0: set it to 2";
    await waitFor("the stream stopped", () => Promise.resolve(!flows.live()));
    // SIGTERM is ignored: it is killed at the next check, and only then said stopped.
    await waitFor("the stand-in gone", () => {
      try {
        Deno.kill(pid, "SIGCONT");
        return Promise.resolve(false);
      } catch {
        return Promise.resolve(true);
      }
    });
    await waitFor("the stop said", () =>
      Promise.resolve(
        log.records.at(-1)!.text.startsWith("conntrack's events for new flows stopped"),
      ));
    assertIncludes(String(log.records.at(-1)!.fields.why), "nf_conntrack_events is 0");
    assertEquals(flows.live(), false);
  } finally {
    await flows.close();
    await dir.remove();
  }
});

Deno.test("eventsOff() reads the namespace's net.netfilter.nf_conntrack_events", async () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  const ns = namespaceName("fo");
  try {
    await addNamespaces([ns], cleanups);
    const inNs = (...argv: string[]) => must(["ip", "netns", "exec", ns, ...argv]);
    const said = () =>
      inNs(
        Deno.execPath(),
        "eval",
        `const m = await import("${ROOT}src/platform/flow_events.ts"); console.log(JSON.stringify(m.eventsOff() ?? null))`,
      ).then((out) => JSON.parse(out) as string | null);
    // A conntrack match loads conntrack, and with it the sysctl, on a host that had neither.
    await inNs("iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT");
    await inNs("sysctl", "-qw", "net.netfilter.nf_conntrack_events=0");
    assertIncludes(String(await said()), "net.netfilter.nf_conntrack_events is 0");
    await inNs("sysctl", "-qw", "net.netfilter.nf_conntrack_events=2");
    assertEquals(await said(), null);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
});
