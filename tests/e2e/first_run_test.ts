/**
 * What a new administrator meets on the first runs: no arguments, a mode run as a non-root
 * user, root's PATH without the sbin directories (Debian's `su` without `-`), a daemon that
 * cannot start. Each ends in one line and a non-zero status, never a stack trace; a daemon's
 * line is Aspera Proxy's `ERR Failed to initialize proxy service` and the reason. The daemons
 * run in network namespaces of their own.
 */
import { assertEquals, assertIncludes } from "../_assert.ts";
import { waitFor } from "../testbed/exec.ts";
import { BINARY, runXferproxy, tempDir } from "../testbed/paths.ts";

const isRoot = Deno.uid() === 0;
/** Root's PATH after Debian's `su` without `-`: no sbin directory. */
const SU_PATH = "/usr/bin:/bin";
const START_FAILED = "xferproxy: ERR Failed to initialize proxy service: ";

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` with only PATH and HOME set; killed after 30 s. */
async function ran(argv: string[], path = SU_PATH): Promise<Ran> {
  const [program = "", ...args] = argv;
  const output = await new Deno.Command(program, {
    args,
    clearEnv: true,
    env: { PATH: path, HOME: "/tmp" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** `argv` as the unprivileged user nobody (uid 65534), no supplementary groups. */
function asNobody(argv: string[]): string[] {
  return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...argv];
}

/** `argv` in a new network namespace; `forwarding` turns IPv4 forwarding on there first. */
function inNamespace(argv: string[], forwarding: boolean): string[] {
  const setup = forwarding ? "/usr/sbin/sysctl -qw net.ipv4.ip_forward=1; " : "";
  return [
    "unshare",
    "--net",
    "/bin/sh",
    "-c",
    `/usr/sbin/ip link set lo up; ${setup}exec "$@"`,
    "sh",
    ...argv,
  ];
}

/** A config in a fresh directory others may read; its state directory only root may enter. */
async function bed(forward = ""): Promise<{ dir: string; config: string; state: string }> {
  const { path: dir } = await tempDir("xferproxy-first-run-");
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/locked`, { mode: 0o700 });
  const state = `${dir}/locked/state`;
  const config = `${dir}/aspera.conf`;
  await Deno.writeTextFile(
    config,
    `<CONF version="2"><server><state_directory>${state}</state_directory>` +
      `<enable_http>true</enable_http><http_port>18080</http_port><http_bind>127.0.0.1</http_bind>` +
      `<proxy><enabled>true</enabled><authentication>false</authentication>` +
      `<users_file>${dir}/locked/users.json</users_file>${forward}</proxy>` +
      `<rproxy></rproxy></server></CONF>`,
  );
  await Deno.chmod(config, 0o644);
  return { dir, config, state };
}

/** The lines of `text` but the config's own warnings. */
function withoutWarnings(text: string): string[] {
  return text.split("\n").filter((line) => line !== "" && !/^xferproxy: WARN Config /.test(line));
}

Deno.test("xferproxy with no arguments prints the overview on stderr and exits 2", async () => {
  const result = await runXferproxy([]);
  assertEquals([result.code, result.stdout], [2, ""]);
  assertEquals(result.stderr, (await runXferproxy(["--help"])).stdout);
});

Deno.test({
  name: "as a non-root user, dnat list, dnat serve and forward user add say why in one line",
  ignore: !isRoot,
  async fn() {
    const { dir, config, state } = await bed();
    try {
      const denied = `Cannot mkdir "${state}": permission denied`;
      const cases: Array<[string[], string]> = [
        [["dnat", "list"], `xferproxy: ${denied} (run it as root)`],
        [["dnat", "reap"], `xferproxy: ${denied} (run it as root)`],
        // The service's log wrote its line to stderr already: that one line, and no other.
        [["dnat", "serve"], `${START_FAILED}${denied}`],
        [
          ["forward", "user", "add", "bob"],
          `xferproxy: Cannot read "${dir}/locked/users.json": permission denied (run it as root)`,
        ],
      ];
      for (const [args, line] of cases) {
        const result = await ran(asNobody([BINARY, ...args, "--config", config]));
        assertEquals([args.join(" "), result.code, result.stdout, result.stderr], [
          args.join(" "),
          1,
          "",
          `${line}\n`,
        ]);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "root's PATH without /usr/sbin: the DNAT service and the forward daemon find their tools",
  ignore: !isRoot,
  async fn() {
    const { dir, config, state } = await bed();
    const daemons: Deno.ChildProcess[] = [];
    try {
      const start = (args: string[], forwarding: boolean) => {
        const [program = "", ...argv] = inNamespace(
          [BINARY, ...args, "--config", config],
          forwarding,
        );
        const child = new Deno.Command(program, {
          args: argv,
          clearEnv: true,
          env: { PATH: SU_PATH, HOME: "/root" },
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        daemons.push(child);
        let text = "";
        const done = (async () => {
          for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
            text += chunk;
          }
        })();
        return { child, text: () => text, done };
      };
      const service = start(["dnat", "serve"], false);
      await waitFor("the DNAT service's heartbeat", async () => {
        assertEquals(/Failed|Requires|NotCapable/.test(service.text()), false, service.text());
        return await Deno.stat(`${state}/dnat/service.json`).then(() => true, () => false);
      }, 30_000);
      assertIncludes(service.text(), "DNAT service started (iptables backend");

      const daemon = start(["forward"], true);
      await waitFor("the forward daemon", () => {
        assertEquals(/Failed|Requires|NotCapable/.test(daemon.text()), false, daemon.text());
        return Promise.resolve(daemon.text().includes("LOG proxy service ready"));
      }, 30_000);
      for (const { child, done } of [service, daemon]) {
        child.kill("SIGTERM");
        assertEquals((await child.status).code, 0);
        await done;
      }
      assertEquals(/Requires|NotCapable|\n\s+at /.test(service.text() + daemon.text()), false);
    } finally {
      for (const child of daemons) {
        try {
          child.kill("SIGKILL");
        } catch { /* already ended */ }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a forward daemon that cannot start exits 1 with Aspera Proxy's line and the reason, once",
  ignore: !isRoot,
  async fn() {
    const { dir, config } = await bed();
    try {
      // A new namespace forwards nothing: net.ipv4.ip_forward is 0 there.
      for (const path of [SU_PATH, "/usr/sbin:/usr/bin:/sbin:/bin"]) {
        const result = await ran(inNamespace([BINARY, "forward", "--config", config], false), path);
        assertEquals([path, result.code, result.stdout, withoutWarnings(result.stderr)], [
          path,
          1,
          "",
          [
            `${START_FAILED}net.ipv4.ip_forward is 0: enable it with "sysctl -w net.ipv4.ip_forward=1" and set net.ipv4.ip_forward=1 in /etc/sysctl.conf`,
          ],
        ]);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
