import { assertEquals } from "../_assert.ts";
import { forwardingEnabled } from "../../src/platform/dnat_host.ts";
import type { ProcReader } from "../../src/dnat/procfs.ts";
import type { CommandRunner } from "../../src/process/runner.ts";

/** A runner that records what it was asked to run and answers `stdout`. */
function recordingRunner(stdout: string) {
  const ran: string[][] = [];
  const runner: CommandRunner = {
    run(program, args) {
      ran.push([program, ...args]);
      return Promise.resolve({ code: 0, stdout, stderr: "" });
    },
  };
  return { ran, runner };
}

/** /proc with these files only. */
function procWith(files: Record<string, string>): ProcReader {
  return {
    readTexts: (paths) =>
      Promise.resolve(new Map(paths.filter((p) => p in files).map((p) => [p, files[p] as string]))),
    linkTargets: () => Promise.resolve([]),
  };
}

Deno.test("forwardingEnabled() reads /proc/sys, and runs sysctl only where it cannot", async (t) => {
  await t.step("the file says 1 or 0: no process started", async () => {
    const { ran, runner } = recordingRunner("0\n");
    const on = procWith({ "/proc/sys/net/ipv4/ip_forward": "1\n" });
    assertEquals(await forwardingEnabled(on, runner, 4), true);
    const off = procWith({ "/proc/sys/net/ipv6/conf/all/forwarding": "0\n" });
    assertEquals(await forwardingEnabled(off, runner, 6), false);
    assertEquals(ran, []);
  });
  await t.step("the file cannot be read: sysctl answers", async () => {
    const { ran, runner } = recordingRunner("1\n");
    assertEquals(await forwardingEnabled(procWith({}), runner, 6), true);
    assertEquals(ran, [["sysctl", "-n", "net.ipv6.conf.all.forwarding"]]);
  });
});
