/**
 * The session client (src/native/session_client.c), the first process of a reverse session,
 * against a service the test plays on a root socket: what it sends, the files it reads as its
 * user, what it execs or how it exits, when it leaves the session to the Deno program, and what
 * it does with a reply it cannot trust. The launcher's wiring too: `xferproxy reverse` starts as
 * the client, not as a Deno runtime. The real service's side is service_test.ts.
 */
import { assertEquals, assertMatch, assertOk } from "../_assert.ts";
import { decideLine } from "../../src/reverse/decide_protocol.ts";
import { PYTHON } from "../testbed/paths.ts";
import { readUntil } from "../testbed/lines.ts";

const isRoot = Deno.uid() === 0;
const ROOT = new URL("../../", import.meta.url).pathname;
const CLIENT = `${ROOT}dist/xferproxy-session`;
const LAUNCHER = `${ROOT}dist/xferproxy`;
const NOBODY = 65534;

/** One conversation as the service: the client's lines in, ours out. */
interface Conversation {
  next(): Promise<string | undefined>;
  send(message: unknown): Promise<void>;
  sendRaw(text: string): Promise<void>;
}

/** A root socket in a root directory (mode 755), answering each connection with `serve`. */
async function fakeService(
  dir: string,
  serve: (c: Conversation) => Promise<void>,
): Promise<{ path: string; connections: () => number; close: () => Promise<void> }> {
  await Deno.mkdir(`${dir}/run`, { mode: 0o755 });
  await Deno.chmod(`${dir}/run`, 0o755);
  const path = `${dir}/run/dnat.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  await Deno.chmod(path, 0o666);
  let count = 0;
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      count++;
      served.push(converse(conn, serve));
    }
  })();
  return {
    path,
    connections: () => count,
    close: async () => {
      listener.close();
      await accepting.catch(() => {});
      await Promise.all(served);
      await Deno.remove(`${dir}/run`, { recursive: true });
    },
  };
}

async function converse(conn: Deno.Conn, serve: (c: Conversation) => Promise<void>) {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let text = "";
  const buffer = new Uint8Array(65536);
  const write = async (s: string) => {
    const bytes = encoder.encode(s);
    for (let sent = 0; sent < bytes.length;) sent += await conn.write(bytes.subarray(sent));
  };
  try {
    await serve({
      async next() {
        while (!text.includes("\n")) {
          const n = await conn.read(buffer);
          if (n === null) return undefined;
          text += decoder.decode(buffer.subarray(0, n), { stream: true });
        }
        const i = text.indexOf("\n");
        const line = text.slice(0, i);
        text = text.slice(i + 1);
        return line;
      },
      send: (message) => write(JSON.stringify(message) + "\n"),
      sendRaw: write,
    });
  } catch {
    /* the client went away: its outcome is what the test asserts */
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** A config naming the fake service's socket (in a comment first: that one must not count). */
async function writeConfig(dir: string, socket: string): Promise<string> {
  const path = `${dir}/aspera.conf`;
  await Deno.writeTextFile(
    path,
    `<CONF version="2"><server><rproxy>\n<!-- <service_socket>/nowhere.sock</service_socket> -->\n` +
      `<service_socket> ${socket} </service_socket></rproxy></server></CONF>\n`,
  );
  await Deno.chmod(path, 0o644);
  return path;
}

/** Binds argv[1] as root, listens as uid argv[2], answers every request with an exec of `echo`. */
const IMPOSTOR = `
import os, signal, socket, sys
signal.alarm(20)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
os.setuid(int(sys.argv[2]))
s.listen(8)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.recv(65536)
        c.sendall(b'{"op":"decided","tell":[],"handoff":{"path":"/bin/echo","argv":["echo","impostor"],"env":[]}}\\n')
    except OSError:
        pass  # the client hung up on us, as it should
    c.close()
`;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the client (or `argv` as given) with only `env`; as nobody when asked. */
async function runClient(
  args: string[],
  env: Record<string, string>,
  options: { asNobody?: boolean; launcher?: boolean; pidSeen?: (pid: number) => void } = {},
): Promise<Ran> {
  const command = options.launcher
    ? [LAUNCHER, ...args]
    : [CLIENT, String(args.length), ...args, "/bin/echo", "fallback", ...args];
  const argv = options.asNobody
    ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--", ...command]
    : command;
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    env: { PATH: "/usr/bin:/bin", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).spawn();
  options.pidSeen?.(child.pid);
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test({
  name: "the session client",
  ignore: !isRoot,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "xferproxy-client-" });
    await Deno.chmod(dir, 0o755);
    try {
      await t.step("sends the decide request and execs the hand-off exactly", async () => {
        let request = "";
        let clientExe = "";
        let clientPid = 0;
        const service = await fakeService(dir, async (c) => {
          request = (await c.next()) ?? "";
          clientExe = await Deno.readLink(`/proc/${clientPid}/exe`).catch((e) => String(e));
          await c.send({
            op: "decided",
            tell: ["line one", "ünïcode ☃"],
            handoff: {
              path: "/bin/sh",
              argv: [
                "xferproxy-ssh",
                "-c",
                'printf "%s|%s|%s|%s" "$0" "$A" "$B" "${SECRET-unset}"',
              ],
              env: ["A=1 2\n3", "B=é𝄞"],
            },
          });
        });
        try {
          const config = await writeConfig(dir, service.path);
          const command = `scp -t "a b"\\'\t\n\r\b\f\x01\x1f é☃𝄞 /x`;
          // Through the launcher: a reverse session starts as the client, no Deno runtime.
          const result = await runClient(["reverse", "--config", config], {
            USER: "alice",
            SSH_ORIGINAL_COMMAND: command,
            XFERPROXY_HOST: "files.example",
            SECRET: "never sent",
          }, { launcher: true, pidSeen: (pid) => clientPid = pid });
          assertEquals(result, {
            code: 0,
            stdout: "xferproxy-ssh|1 2\n3|é𝄞|unset",
            stderr: "line one\nünïcode ☃\n",
          });
          assertMatch(clientExe, /\/session$/, "the session's first process is not the client");
          const info = await Deno.stat(config);
          // Byte for byte what the Deno client sends (the service's line limit counts them).
          assertEquals(
            request + "\n",
            decideLine({
              config: { dev: info.dev, ino: info.ino! },
              pty: false,
              env: {
                USER: "alice",
                SSH_ORIGINAL_COMMAND: command,
                XFERPROXY_HOST: "files.example",
              },
            }),
          );
        } finally {
          await service.close();
        }
      });

      await t.step("reads the files the service asks for as its own user", async () => {
        const files = `${dir}/files`;
        await Deno.mkdir(files, { mode: 0o755 });
        await Deno.chmod(files, 0o755);
        await Deno.writeTextFile(`${files}/key`, "\ufeffkey é\n");
        await Deno.chmod(`${files}/key`, 0o644);
        await Deno.writeTextFile(`${files}/secret`, "root only");
        await Deno.chmod(`${files}/secret`, 0o600);
        await Deno.writeFile(`${files}/binary`, new Uint8Array([0x66, 0xff, 0x0a]));
        await Deno.chmod(`${files}/binary`, 0o644);
        await Deno.writeTextFile(`${files}/large`, "x".repeat(100 * 1024));
        await Deno.chmod(`${files}/large`, 0o644);
        await new Deno.Command("mkfifo", { args: ["-m", "666", `${files}/fifo`] }).output();
        const asks = ["key", "secret", "missing", "fifo", "large", "binary"];
        const answers: Record<string, unknown>[] = [];
        const service = await fakeService(dir, async (c) => {
          await c.next();
          for (const name of asks.slice(0, 4)) {
            await c.send({ op: "read", path: `${files}/${name}` });
            answers.push(JSON.parse((await c.next()) ?? "null"));
          }
          await c.send({ op: "decided", tell: ["bye"], exit: 7 });
        });
        const service2Asks = asks.slice(4);
        try {
          const config = await writeConfig(dir, service.path);
          const result = await runClient(["reverse", `--config=${config}`], { USER: "nobody" }, {
            asNobody: true,
          });
          assertEquals(result, { code: 7, stdout: "", stderr: "bye\n" });
        } finally {
          await service.close();
        }
        // A fifth read is one too many (MAX_READS is 4): the remaining two in a second session.
        const service2 = await fakeService(dir, async (c) => {
          await c.next();
          for (const name of service2Asks) {
            await c.send({ op: "read", path: `${files}/${name}` });
            answers.push(JSON.parse((await c.next()) ?? "null"));
          }
          await c.send({ op: "decided", tell: [], exit: 0 });
        });
        try {
          const config = await writeConfig(dir, service2.path);
          const result = await runClient(["reverse", "--config", config], {}, { asNobody: true });
          assertEquals(result, { code: 0, stdout: "", stderr: "" });
        } finally {
          await service2.close();
        }
        const errors = answers.map((a) => a.error ?? "text");
        assertEquals(errors, ["text", "denied", "not_found", "other", "other", "other"]);
        assertEquals(answers[0], { op: "file", text: "key é\n", uid: 0, mode: 0o100644 });
        assertMatch(String(answers[1]!.message), /^Permission denied \(os error 13\)/);
        assertEquals(answers[3]!.message, "not a regular file");
        assertEquals(answers[4]!.message, "too large");
        assertMatch(String(answers[5]!.message), /not valid for encoding utf-8/);
      });

      await t.step(
        "leaves the session to the Deno program when the service cannot decide it",
        async () => {
          // No service at all.
          const config = await writeConfig(dir, `${dir}/run/dnat.sock`);
          let result = await runClient(["reverse", "--config", config], { USER: "alice" });
          assertEquals(result.stdout, `fallback reverse --config ${config}\n`);
          // The service says so (another config), or is asked with an input it would refuse, or
          // the arguments are not a plain session, or the socket's directory is not root's alone.
          const service = await fakeService(dir, async (c) => {
            await c.next();
            await c.send({ op: "fallback", reason: "the session was given another config file" });
          });
          try {
            const configured = await writeConfig(dir, service.path);
            result = await runClient(["reverse", "--config", configured], { USER: "alice" });
            assertEquals([result.code, result.stdout], [
              0,
              `fallback reverse --config ${configured}\n`,
            ]);
            assertEquals(service.connections(), 1);
            result = await runClient(["reverse", "--config", configured], {
              SSH_ORIGINAL_COMMAND: "x".repeat(16385),
            });
            assertEquals(result.stdout, `fallback reverse --config ${configured}\n`);
            result = await runClient(["reverse", "--config", configured, "--debug"], {});
            assertEquals(result.stdout, `fallback reverse --config ${configured} --debug\n`);
            await Deno.chmod(`${dir}/run`, 0o775);
            result = await runClient(["reverse", "--config", configured], { USER: "alice" });
            assertEquals(result.stdout, `fallback reverse --config ${configured}\n`);
            assertEquals(service.connections(), 1, "the client connected when it should not have");
          } finally {
            await service.close();
          }
        },
      );

      await t.step("talks only to a listener of root's, however the path resolved", async () => {
        // A socket file of root's in root's directory, but listened on by an account that is not
        // root (as if a directory on the way had been swapped between the check and the connect).
        await Deno.mkdir(`${dir}/run`, { mode: 0o755 });
        await Deno.chmod(`${dir}/run`, 0o755);
        const socket = `${dir}/run/dnat.sock`;
        const impostor = new Deno.Command(PYTHON, {
          args: ["-c", IMPOSTOR, socket, String(NOBODY)],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        try {
          const reader = impostor.stdout.pipeThrough(new TextDecoderStream()).getReader();
          await readUntil(reader, "listening\n", 20_000, () => "the impostor did not listen");
          await reader.cancel();
          const config = await writeConfig(dir, socket);
          const result = await runClient(["reverse", "--config", config], { USER: "alice" });
          assertEquals(result.stdout, `fallback reverse --config ${config}\n`);
        } finally {
          try {
            impostor.kill("SIGKILL");
          } catch { /* it already exited */ }
          await impostor.status;
          await Deno.remove(`${dir}/run`, { recursive: true });
        }
      });

      await t.step("a reply it cannot trust ends the session with 255 and one line", async () => {
        const bad = [
          "not json\n",
          JSON.stringify({
            op: "decided",
            tell: [],
            handoff: { path: "sh", argv: ["sh"], env: [] },
          }) +
          "\n",
          JSON.stringify({ op: "decided", tell: [], exit: 256 }) + "\n",
          JSON.stringify({ op: "decided", tell: ["x\u0000y"], exit: 0 }) + "\n",
          '{"op":"decided","tell":["\\ud800"],"exit":0}\n',
          JSON.stringify({ op: "decided", tell: [], exit: 0, handoff: { path: "/bin/true" } }) +
          "\n",
          JSON.stringify({ op: "read", path: "relative" }) + "\n",
          `{"op":"decided","tell":[],"exit":0}`, // no end of line: then the service closes
          "",
        ];
        let i = 0;
        const service = await fakeService(dir, async (c) => {
          await c.next();
          await c.sendRaw(bad[i++]!);
        });
        try {
          const config = await writeConfig(dir, service.path);
          for (const _ of bad) {
            const result = await runClient(["reverse", "--config", config], { USER: "alice" });
            assertEquals(result, {
              code: 255,
              stdout: "",
              stderr: "xferproxy: the DNAT service did not answer; see the proxy log\n",
            }, `reply ${JSON.stringify(bad[i - 1])}`);
          }
          assertOk(i === bad.length);
        } finally {
          await service.close();
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
