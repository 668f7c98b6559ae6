/**
 * The DNAT service's log as a daemon: SIGHUP reopens its file after logrotate moved it (and
 * does not stop it), and under systemd (INVOCATION_ID) it logs once, to the file or else to
 * stderr (the journal), never also to syslog. Run in a network namespace of its own.
 */
import { assertEquals, assertMatch } from "../_assert.ts";
import { must, run, waitFor } from "../testbed/exec.ts";
import { BINARY, tempDir } from "../testbed/paths.ts";

const isRoot = Deno.uid() === 0;

interface Service {
  child: Deno.ChildProcess;
  stderr(): string;
  stop(): Promise<number>;
}

/** Starts `dnat serve` in a new network namespace; waits for its heartbeat. */
async function startService(
  dir: string,
  logDirectory: string | undefined,
  env: Record<string, string>,
): Promise<Service> {
  const config = `${dir}/aspera.conf`;
  await Deno.writeTextFile(
    config,
    `<CONF version="2"><server><state_directory>${dir}/state</state_directory><rproxy>` +
      (logDirectory ? `<log_directory>${logDirectory}</log_directory>` : "") +
      `</rproxy></server></CONF>`,
  );
  const child = new Deno.Command("unshare", {
    args: ["--net", BINARY, "dnat", "serve", "--config", config],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const done = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
  })();
  await waitFor("the DNAT service's heartbeat", async () => {
    const status = await Promise.race([child.status, Promise.resolve(undefined)]);
    if (status) throw new Error(`dnat serve exited ${status.code}: ${text}`);
    return await Deno.stat(`${dir}/state/dnat/service.json`).then(() => true, () => false);
  }, 30_000);
  return {
    child,
    stderr: () => text,
    async stop() {
      child.kill("SIGTERM");
      const { code } = await child.status;
      await done;
      return code;
    },
  };
}

/** The processes whose parent is `pid` (the service: unshare execs it), by command name. */
async function childNames(pid: number): Promise<string[]> {
  const out = await run(["ps", "-o", "comm=", "--ppid", String(pid)]);
  return out.stdout.split("\n").map((l) => l.trim()).filter(Boolean).sort();
}

Deno.test({
  name: "SIGHUP makes the DNAT service reopen its log file, and does not stop it",
  ignore: !isRoot,
  async fn() {
    const dir = await tempDir();
    const logs = `${dir.path}/log`;
    await Deno.mkdir(logs);
    const service = await startService(dir.path, logs, {});
    try {
      // Root's file, which the group cannot write; the shared one stays the sessions'.
      const file = `${logs}/root/xferproxy.log`;
      await waitFor("a first log line", async () => (await Deno.readTextFile(file)).length > 0);
      await Deno.rename(file, `${file}.1`);
      await must(["kill", "-HUP", String(service.child.pid)]);
      await waitFor(
        "the reopened file",
        () => Deno.readTextFile(file).then((t) => /Reopened the log file/.test(t), () => false),
      );
      assertEquals(/Reopened/.test(await Deno.readTextFile(`${file}.1`)), false);
      assertEquals(await Deno.stat(`${logs}/xferproxy.log`).then(() => true, () => false), false);
      // Still running: its heartbeat keeps coming.
      const before = (await Deno.stat(`${dir.path}/state/dnat/service.json`)).mtime?.getTime();
      await waitFor(
        "a later heartbeat",
        async () =>
          (await Deno.stat(`${dir.path}/state/dnat/service.json`)).mtime?.getTime() !== before,
        15_000,
      );
      assertEquals(await service.stop(), 0);
    } finally {
      await service.stop().catch(() => {});
      await dir.remove();
    }
  },
});

Deno.test({
  name: "started by systemd, the DNAT service logs once: the file, else stderr, never syslog too",
  ignore: !isRoot,
  async fn() {
    const dir = await tempDir();
    const logs = `${dir.path}/log`;
    await Deno.mkdir(logs);
    try {
      const systemd = { INVOCATION_ID: "0123456789abcdef0123456789abcdef" };
      const withFile = await startService(dir.path, logs, systemd);
      const fileChildren = await childNames(withFile.child.pid);
      assertEquals(await withFile.stop(), 0);
      assertEquals(withFile.stderr(), "");
      assertMatch(await Deno.readTextFile(`${logs}/root/xferproxy.log`), /LOG /);
      assertEquals(fileChildren.includes("logger"), false);

      const journal = await startService(dir.path, undefined, systemd);
      const journalChildren = await childNames(journal.child.pid);
      assertEquals(await journal.stop(), 0);
      assertMatch(journal.stderr(), /^xferproxy: LOG /m);
      assertEquals(journalChildren.includes("logger"), false);

      // By hand: stderr as well, and syslog through logger(1) when no directory is set.
      const byHand = await startService(dir.path, undefined, {});
      const handChildren = await childNames(byHand.child.pid);
      assertEquals(await byHand.stop(), 0);
      assertMatch(byHand.stderr(), /^xferproxy: LOG /m);
      assertEquals(handChildren.includes("logger"), true);
    } finally {
      await dir.remove();
    }
  },
});
