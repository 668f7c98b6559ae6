/**
 * Attacks a proxy group member can make on the files in the shared directories (the log
 * directory and the balancer state): a FIFO swapped in must never hang an open (a blocking open
 * waits for a partner forever), a hard link or symlink planted there must never be written
 * through, and root's own log file must be out of the group's reach. Each refusal says, in one
 * line, which file and why.
 */
import { assertEquals, assertMatch } from "../_assert.ts";
import { run, waitFor } from "../testbed/exec.ts";
import { probeArgv, PYTHON, tempDir } from "../testbed/paths.ts";
import { logger, type LogOutputs, setupLogging, teardownLogging } from "../../src/log/mod.ts";
import { openLogOutputs } from "../../src/platform/log_outputs.ts";

const isRoot = Deno.uid() === 0;
/** A proxy user: not root, a member of the directories' group. */
const MEMBER = 65534;

/**
 * Swaps a FIFO and a regular file in and out of each path, by rename, until stopped or 40 s
 * have passed: an opener's lstat may see a regular file whose place a FIFO takes before open().
 */
function startSwapper(paths: string[]): Deno.ChildProcess {
  return new Deno.Command(PYTHON, {
    args: [
      "-c",
      `
import os, sys, time
paths = sys.argv[1:]
deadline = time.time() + 40
while time.time() < deadline:
    for p in paths:
        os.mkfifo(p + ".fifo")
        os.rename(p + ".fifo", p)
        open(p + ".file", "w").close()
        os.rename(p + ".file", p)
`,
      ...paths,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test("a FIFO swapped in for the shared log or the balancer file never hangs its opener", async () => {
  for (const kind of ["log", "balancer"] as const) {
    const dir = await tempDir();
    const swapped = kind === "log"
      ? [`${dir.path}/xferproxy.log`]
      : [`${dir.path}/balancer.json`, `${dir.path}/balancer.lock`];
    const swapper = startSwapper(swapped);
    try {
      await waitFor("the swapper", async () => {
        for (const path of swapped) {
          if (!await Deno.lstat(path).then(() => true, () => false)) return false;
        }
        return true;
      });
      const argv = probeArgv("shared_open_probe.ts", dir.path, [kind, dir.path, "3000"]);
      const result = await run(argv, { timeoutMs: 30_000 });
      // Killed by the timeout (a hung open) or failed otherwise.
      assertEquals([kind, result.code, result.stderr], [kind, 0, ""]);
      const { opened, refused } = JSON.parse(result.stdout);
      // Both happened: the swapper did race the opener, and a regular file was still used.
      assertEquals([kind, opened > 0, refused > 0], [kind, true, true]);
    } finally {
      try {
        swapper.kill();
      } catch { /* already gone */ }
      await swapper.status;
      await dir.remove();
    }
  }
});

/** Opens the log outputs like a process of `uid`; returns them and the warning said at start. */
async function openAs(
  dir: string,
  uid: number,
): Promise<{ outputs: LogOutputs; warnings: string[] }> {
  const outputs = openLogOutputs({ directory: dir, uid, syslogSocket: `${dir}/../no-syslog` });
  const warnings: string[] = [];
  const fake: LogOutputs = {
    ...outputs,
    ...(outputs.syslog ? { syslog: (_severity: number, line: string) => warnings.push(line) } : {}),
  };
  await setupLogging({ logLevel: 0 }, fake);
  logger("test").info("a line");
  await teardownLogging();
  await outputs.close();
  return { outputs, warnings };
}

Deno.test("a hard link, symlink or FIFO planted as the shared log is refused in one line, nothing written through", async () => {
  const dir = await tempDir();
  const victim = `${dir.path}/victim`;
  const logDir = `${dir.path}/log`;
  try {
    await Deno.mkdir(logDir, { mode: 0o770 });
    await Deno.writeTextFile(victim, "someone's file\n", { mode: 0o660 });
    for (const plant of ["hardlink", "symlink", "fifo"] as const) {
      const log = `${logDir}/xferproxy.log`;
      await Deno.remove(log).catch(() => {});
      if (plant === "hardlink") await Deno.link(victim, log);
      if (plant === "symlink") await Deno.symlink(victim, log);
      if (plant === "fifo") {
        assertEquals((await new Deno.Command("mkfifo", { args: [log] }).output()).code, 0);
      }
      const { outputs, warnings } = await openAs(logDir, MEMBER);
      assertEquals([plant, outputs.appendFile === undefined], [plant, true]);
      const why = {
        hardlink: /has 2 hard links/,
        symlink: /symbolic link/,
        fifo: /symbolic link or not a regular file/,
      }[plant];
      assertEquals(warnings.length, 2, warnings.join("\n"));
      assertMatch(warnings[0]!, new RegExp(`WARN Not logging to ${log}: `));
      assertMatch(warnings[0]!, why);
      assertMatch(warnings[0]!, /its lines go to syslog$/);
      assertEquals(warnings[0]!.includes("\n"), false);
    }
    assertEquals(await Deno.readTextFile(victim), "someone's file\n");
  } finally {
    await teardownLogging();
    await dir.remove();
  }
});

Deno.test({
  name:
    "root logs to <log_directory>/root/xferproxy.log: root's 0750 directory and 0640 file, never a group member's",
  ignore: !isRoot,
  async fn() {
    const dir = await tempDir();
    const logDir = `${dir.path}/log`;
    const rootDir = `${logDir}/root`;
    const rootLog = `${rootDir}/xferproxy.log`;
    try {
      await Deno.chmod(dir.path, 0o755);
      await Deno.mkdir(logDir);
      await Deno.chown(logDir, 0, MEMBER);
      await Deno.chmod(logDir, 0o2770);
      const first = await openAs(logDir, 0);
      assertEquals(first.warnings, []);
      assertMatch(await Deno.readTextFile(rootLog), /LOG a line$/m);
      assertEquals(await Deno.stat(`${logDir}/xferproxy.log`).then(() => true, () => false), false);
      const made = await Deno.lstat(rootDir);
      assertEquals([made.uid, made.gid, made.mode! & 0o777], [0, MEMBER, 0o750]);
      const file = await Deno.lstat(rootLog);
      assertEquals([file.uid, file.gid, file.mode! & 0o777], [0, MEMBER, 0o640]);

      // A member can write the shared file, not root's (nor add files beside it).
      const member = ["setpriv", `--reuid=${MEMBER}`, `--regid=${MEMBER}`, "--clear-groups"];
      const append = (path: string) =>
        run([...member, "sh", "-c", `echo forged >> ${path}`], { timeoutMs: 10_000 });
      assertEquals((await append(`${logDir}/xferproxy.log`)).code, 0);
      assertEquals((await append(rootLog)).code !== 0, true);
      assertEquals((await append(`${rootDir}/other.log`)).code !== 0, true);
      assertEquals((await Deno.readTextFile(rootLog)).includes("forged"), false);

      // The member renames root's directory away and plants its own, holding a FIFO, a hard link
      // or a symlink: root refuses at once, in one line, and writes nothing there.
      await Deno.rename(rootDir, `${logDir}/moved`);
      const victim = `${dir.path}/victim`;
      await Deno.writeTextFile(victim, "root's file\n", { mode: 0o600 });
      for (const plant of ["fifo", "hardlink", "symlink", "open dir"] as const) {
        await Deno.remove(rootDir, { recursive: true }).catch(() => {});
        await Deno.mkdir(rootDir);
        await Deno.chown(rootDir, plant === "open dir" ? 0 : MEMBER, MEMBER);
        await Deno.chmod(rootDir, plant === "open dir" ? 0o770 : 0o750);
        if (plant === "fifo") {
          assertEquals((await new Deno.Command("mkfifo", { args: [rootLog] }).output()).code, 0);
        }
        if (plant === "hardlink") await Deno.link(victim, rootLog);
        if (plant === "symlink") await Deno.symlink(victim, rootLog);
        const { outputs, warnings } = await openAs(logDir, 0);
        assertEquals([plant, outputs.appendFile === undefined], [plant, true]);
        assertEquals(warnings.length, 2, warnings.join("\n"));
        assertMatch(
          warnings[0]!,
          new RegExp(
            `WARN Not logging to ${rootLog}: directory "${rootDir}" .*; refusing to use it`,
          ),
        );
      }
      assertEquals(await Deno.readTextFile(victim), "root's file\n");
      // Root's earlier lines are where the rename left them, out of the member's reach.
      assertMatch(await Deno.readTextFile(`${logDir}/moved/xferproxy.log`), /LOG a line$/m);
    } finally {
      await teardownLogging();
      await dir.remove();
    }
  },
});
