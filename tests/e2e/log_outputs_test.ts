/**
 * The real log outputs: a session's lines land in <log_directory>/xferproxy.log,
 * and in syslog through logger(1) with ident xferproxy and the right priority.
 */
import { assertEquals, assertMatch } from "../_assert.ts";
import { logger, setupLogging, teardownLogging } from "../../src/log/mod.ts";
import { logLinesLost, openLogOutputs } from "../../src/platform/log_outputs.ts";
import { must, run } from "../testbed/exec.ts";
import { PYTHON, tempDir } from "../testbed/paths.ts";
import { readUntil } from "../testbed/lines.ts";

/** A stand-in for /dev/log: a unix datagram socket at `socket`; `received(n)` has its first n lines. */
async function syslogStandIn(socket: string) {
  const server = new Deno.Command(PYTHON, {
    args: [
      "-c",
      `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
s.settimeout(10)
for _ in range(2):
    print(s.recv(65536).decode(), flush=True)
`,
      socket,
    ],
    stdout: "piped",
    stderr: "inherit",
    signal: AbortSignal.timeout(20_000),
  }).spawn();
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = await readUntil(reader, "ready\n", 20_000, () => "the log reader did not start");
  return {
    async received(count: number): Promise<string[]> {
      for (let i = 0; i < 50 && text.split("\n").length < count + 2; i++) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += chunk.value;
      }
      return text.trimEnd().split("\n").slice(1);
    },
    async close() {
      try {
        server.kill();
      } catch { /* already gone */ }
      await server.status;
    },
  };
}

Deno.test("file sink appends one line per record to xferproxy.log", async () => {
  const dir = await tempDir();
  try {
    // A session's (not root's: root has a file of its own, shared_files_attack_test.ts).
    const outputs = openLogOutputs({ directory: dir.path, uid: 1001 });
    await setupLogging({ logLevel: 1 }, outputs);
    logger("reverse").info("Received connection request from {ip}", {
      ip: "198.18.1.2",
      session: "s1",
    });
    logger("reverse").debug("detail {n}", { n: 1 });
    logger("reverse").trace("not at level 1");
    await teardownLogging();
    await outputs.close();
    const lines = (await Deno.readTextFile(`${dir.path}/xferproxy.log`)).trimEnd().split("\n");
    assertEquals(lines.length, 2);
    assertMatch(
      lines[0]!,
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z xferproxy\\[${Deno.pid}\\]: LOG Received connection request from 198\\.18\\.1\\.2 session=s1$`,
      ),
    );
    assertMatch(lines[1]!, /: DBG detail 1$/);
  } finally {
    await teardownLogging();
    await dir.remove();
  }
});

Deno.test("syslog sink sends ident xferproxy, our pid and the severity through logger(1)", async () => {
  const dir = await tempDir();
  const socket = `${dir.path}/log.sock`;
  const syslog = await syslogStandIn(socket);
  try {
    const outputs = openLogOutputs({ syslogSocket: socket });
    await setupLogging({ logLevel: 0 }, outputs);
    logger().info("Connection closed (EOF)");
    logger().error("Failed to initialize proxy service");
    await teardownLogging();
    await outputs.close();
    const [info, error] = await syslog.received(2);
    // <daemon.info> = 3*8+6 = 30, <daemon.err> = 27
    assertMatch(
      info!,
      new RegExp(`^<30>.*xferproxy\\[${Deno.pid}\\]: LOG Connection closed \\(EOF\\)$`),
    );
    assertMatch(
      error!,
      new RegExp(`^<27>.*xferproxy\\[${Deno.pid}\\]: ERR Failed to initialize proxy service$`),
    );
  } finally {
    await teardownLogging();
    await syslog.close();
    await dir.remove();
  }
});

Deno.test("a symlink or FIFO planted as xferproxy.log is never followed, chmodded or written", async () => {
  const dir = await tempDir();
  const victim = `${dir.path}/victim`;
  const logDir = `${dir.path}/log`;
  try {
    await Deno.mkdir(logDir, { mode: 0o770 });
    await Deno.writeTextFile(victim, "root's file\n", { mode: 0o600 });
    await Deno.chmod(victim, 0o600);
    for (const plant of ["symlink", "dangling", "fifo"] as const) {
      const log = `${logDir}/xferproxy.log`;
      await Deno.remove(log).catch(() => {});
      if (plant === "symlink") await Deno.symlink(victim, log);
      if (plant === "dangling") await Deno.symlink(`${dir.path}/created-by-root`, log);
      if (plant === "fifo") {
        assertEquals((await new Deno.Command("mkfifo", { args: [log] }).output()).code, 0);
      }
      // Opened by root for a session's uid: the file sink must refuse and fall back to syslog.
      const outputs = openLogOutputs({
        directory: logDir,
        uid: 1001,
        syslogSocket: `${dir.path}/none`,
      });
      assertEquals([plant, outputs.appendFile === undefined], [plant, true]);
      await outputs.close();
    }
    assertEquals(await Deno.readTextFile(victim), "root's file\n");
    assertEquals((await Deno.stat(victim)).mode! & 0o777, 0o600);
    assertEquals(
      await Deno.stat(`${dir.path}/created-by-root`).then(() => true, () => false),
      false,
    );
  } finally {
    await dir.remove();
  }
});

Deno.test({
  name:
    "a full log directory: sessions go on, lost lines are counted, the loss and the recovery go to syslog",
  ignore: Deno.uid() !== 0,
  async fn() {
    const dir = await tempDir();
    const socket = `${dir.path}/log.sock`;
    const logs = `${dir.path}/logs`;
    await Deno.mkdir(logs);
    // A small filesystem of its own, filled up after the file is opened.
    await must(["mount", "-t", "tmpfs", "-o", "size=64k", "xferproxy-full", logs]);
    let syslog: Awaited<ReturnType<typeof syslogStandIn>> | undefined;
    try {
      syslog = await syslogStandIn(socket);
      const before = logLinesLost();
      const outputs = openLogOutputs({ directory: logs, uid: 1001, syslogSocket: socket });
      outputs.appendFile!("a line that fits");
      await must(["dd", "if=/dev/zero", `of=${logs}/filler`, "bs=4k", "count=64"]).catch(() => "");
      for (let i = 0; i < 5; i++) outputs.appendFile!(`lost line ${i} ${"x".repeat(4096)}`);
      assertEquals(logLinesLost() - before, 5);
      await Deno.remove(`${logs}/filler`);
      outputs.appendFile!("written again");
      await outputs.close();
      const [failing, recovered] = await syslog.received(2);
      // <daemon.err> = 27, <daemon.notice> = 29
      assertMatch(
        failing!,
        /^<27>.*xferproxy\[\d+\]: Cannot write .*xferproxy\.log: .*No space left on device.*; log lines are lost until it can/,
      );
      assertMatch(
        recovered!,
        /^<29>.*xferproxy\[\d+\]: Writing .*xferproxy\.log again; 5 log lines were lost$/,
      );
      // What fitted of the first lost line is its own line; the next line starts on its own.
      const lines = (await Deno.readTextFile(`${logs}/xferproxy.log`)).split("\n");
      assertEquals([lines[0], lines.at(-2), lines.at(-1)], [
        "a line that fits",
        "written again",
        "",
      ]);
      assertEquals(lines.slice(1, -2).every((l) => l.startsWith("lost line 0 x")), true);
    } finally {
      await syslog?.close();
      await run(["umount", logs]);
      await dir.remove();
    }
  },
});
