/**
 * Reverse mode end to end: real OpenSSH clients in a client namespace, real
 * sshd on the proxy running dist/xferproxy as ForceCommand, real sshd on two
 * internal servers.
 */
// deno-lint-ignore-file no-console
import {
  assertEquals,
  assertIncludes,
  assertMatch,
  assertNotEquals,
  assertOk,
} from "../_assert.ts";
import { must, run, waitFor } from "./_exec.ts";
import { createTestbed, IP, type Testbed, USERS } from "./_testbed.ts";

const isRoot = Deno.uid() === 0;

async function sha256(path: string): Promise<string> {
  return (await must(["sha256sum", path])).split(" ")[0] as string;
}

async function makeFile(path: string, megabytes: number): Promise<void> {
  await must(["dd", "if=/dev/urandom", `of=${path}`, "bs=1M", `count=${megabytes}`, "status=none"]);
  await Deno.chmod(path, 0o644);
}

async function owner(path: string): Promise<string> {
  return (await must(["stat", "-c", "%U", path])).trim();
}

async function serverOf(bed: Testbed, user: string, host: string): Promise<string> {
  const result = await bed.ssh(user, host, ["printenv", "SSH_CONNECTION"]);
  assertEquals(result.code, 0, result.stderr);
  return result.stdout.trim().split(" ")[2] as string;
}

Deno.test({
  name: "reverse mode bridges real OpenSSH sessions to internal servers",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const bed = await createTestbed();
    const { alice, bob, xfer } = USERS;
    try {
      await t.step("ssh exec: stdout, stderr and exit status come back separately", async () => {
        const fail = await bed.ssh(alice, IP.proxy, ["ls", "/nonexistent"]);
        assertEquals([fail.code, fail.stdout], [2, ""]);
        assertIncludes(fail.stderr, "No such file or directory");
        assertEquals((await bed.ssh(alice, IP.proxy, ["false"])).code, 1);
        const ok = await bed.ssh(alice, IP.proxy, ["cat"], { stdin: "through the proxy\n" });
        assertEquals([ok.code, ok.stdout, ok.stderr], [0, "through the proxy\n", ""]);
      });

      await t.step("the seed's log lines are written, with session fields", async () => {
        const log = await bed.log();
        assertMatch(
          log,
          /LOG Received connection request from 198\.18\.1\.2 session=[0-9a-f-]{36} user=xpt_alice/,
        );
        assertMatch(
          log,
          /LOG Established SSH connection with server 198\.18\.2\.2:22 .*upstream_user=xpt_xfer/,
        );
        assertMatch(
          log,
          /LOG Connection closed \(EOF\) .*bytes_up=18 bytes_down=18 duration_ms=\d+ exit=0/,
        );
      });

      await t.step(
        "scp up and down (SFTP and legacy scp protocols), squash ownership",
        async () => {
          const src = `${bed.dir}/up.bin`;
          await makeFile(src, 2);
          for (const legacy of [false, true]) {
            const name = legacy ? "legacy" : "sftp";
            const remote = `${bed.dataDir}/scp-${name}.bin`;
            const up = await run([
              ...bed.clientArgs("scp", alice),
              ...(legacy ? ["-O"] : []),
              src,
              `${IP.proxy}:${remote}`,
            ]);
            assertEquals(up.code, 0, up.stderr);
            assertEquals(await sha256(remote), await sha256(src));
            assertEquals(await owner(remote), xfer);
            const back = `${bed.dir}/down-${name}.bin`;
            const down = await run([
              ...bed.clientArgs("scp", alice),
              ...(legacy ? ["-O"] : []),
              `${IP.proxy}:${remote}`,
              back,
            ]);
            assertEquals(down.code, 0, down.stderr);
            assertEquals(await sha256(back), await sha256(src));
          }
        },
      );

      await t.step("individual accounts keep their own ownership upstream", async () => {
        const src = `${bed.dir}/mine.txt`;
        await Deno.writeTextFile(src, "alice's own file\n");
        const remote = `${bed.dataDir}/alice-own.txt`;
        const up = await run([
          ...bed.clientArgs("scp", alice),
          "-O",
          src,
          `${IP.proxyAlt}:${remote}`,
        ]);
        assertEquals(up.code, 0, up.stderr);
        assertEquals(await owner(remote), alice);
      });

      await t.step("sftp -b runs the sftp subsystem upstream", async () => {
        const batch = `${bed.dir}/batch`;
        await Deno.writeTextFile(`${bed.dir}/sftp-src.txt`, "sftp payload\n");
        await Deno.writeTextFile(
          batch,
          `put ${bed.dir}/sftp-src.txt ${bed.dataDir}/sftp.txt\nls ${bed.dataDir}\nget ${bed.dataDir}/sftp.txt ${bed.dir}/sftp-back.txt\n`,
        );
        const result = await run([...bed.clientArgs("sftp", bob), "-b", batch, IP.proxy]);
        assertEquals(result.code, 0, result.stderr);
        assertIncludes(result.stdout, "sftp.txt");
        assertEquals(await Deno.readTextFile(`${bed.dir}/sftp-back.txt`), "sftp payload\n");
        assertMatch(await bed.log(), /request=subsystem:sftp/);
      });

      await t.step("rsync -e ssh syncs a tree through the proxy", async () => {
        const tree = `${bed.dir}/tree`;
        await Deno.mkdir(`${tree}/sub`, { recursive: true });
        await Deno.writeTextFile(`${tree}/a.txt`, "a\n");
        await Deno.writeTextFile(`${tree}/sub/b.txt`, "b\n");
        const result = await run([
          "ip",
          "netns",
          "exec",
          bed.ns.client,
          "rsync",
          "-a",
          "-e",
          bed.rsyncShell(alice),
          `${tree}/`,
          `${IP.proxy}:${bed.dataDir}/tree/`,
        ]);
        assertEquals(result.code, 0, result.stderr);
        assertEquals(await Deno.readTextFile(`${bed.dataDir}/tree/sub/b.txt`), "b\n");
      });

      await t.step("200 MB up and down through the proxy, verified by sha256", async () => {
        const src = `${bed.dir}/big.bin`;
        await makeFile(src, 200);
        const remote = `${bed.dataDir}/big.bin`;
        const started = performance.now();
        const up = await run(
          [...bed.clientArgs("scp", alice), "-O", src, `${IP.proxy}:${remote}`],
          { timeoutMs: 300_000 },
        );
        const upSeconds = (performance.now() - started) / 1000;
        assertEquals(up.code, 0, up.stderr);
        assertEquals(await sha256(remote), await sha256(src));
        const back = `${bed.dir}/big-back.bin`;
        const down = await run([
          ...bed.clientArgs("scp", alice),
          "-O",
          `${IP.proxy}:${remote}`,
          back,
        ], { timeoutMs: 300_000 });
        assertEquals(down.code, 0, down.stderr);
        assertEquals(await sha256(back), await sha256(src));
        // Direct scp to the internal server, same data, same run: for the record, never asserted.
        const directStart = performance.now();
        const direct = await run(await bed.directScpArgs(src, `${bed.dataDir}/big-direct.bin`), {
          timeoutMs: 300_000,
        });
        const directSeconds = (performance.now() - directStart) / 1000;
        assertEquals(direct.code, 0, direct.stderr);
        console.log(
          `    200 MB upload: proxy ${(200 / upSeconds).toFixed(1)} MB/s, direct ${
            (200 / directSeconds).toFixed(1)
          } MB/s`,
        );
        await Deno.remove(remote);
        await Deno.remove(`${bed.dataDir}/big-direct.bin`);
      });

      await t.step("a pty requested by the client passes through", async () => {
        const result = await bed.ssh(alice, IP.proxy, ["tty"], { extra: ["-tt"] });
        assertEquals(result.code, 0, result.stderr);
        assertMatch(result.stdout, /^\/dev\/pts\/\d+\r?\n$/);
      });

      await t.step(
        "a command killed by a signal ends the session at once with 255, as ssh does",
        async () => {
          const started = performance.now();
          const session = bed.ssh(alice, IP.proxy, ["sleep", "41"]);
          await waitFor(
            "the upstream shell",
            async () => (await run(["pgrep", "-u", xfer, "-f", "^sh -c sleep 41"])).code === 0,
            20_000,
          );
          // Kill the shell, not sleep: sshd reports exit-signal and keeps the channel open while
          // the orphaned sleep holds its output.
          await must(["pkill", "-KILL", "-u", xfer, "-f", "^sh -c sleep 41"]);
          const result = await session;
          assertEquals(result.code, 255);
          assertOk(performance.now() - started < 30_000, "the session waited for the orphan");
          await run(["pkill", "-u", xfer, "-x", "sleep"]);
          assertMatch(await bed.log(), /LOG Connection closed \(EOF\) .* exit=255 signal=KILL/);
        },
      );

      await t.step(
        "refused commands never reach the internal server: one line, exit 1",
        async () => {
          const cases: Array<[string, string]> = [
            [
              `ls ${bed.dataDir}; touch ${bed.dataDir}/pwned`,
              `xferproxy: command refused: it contains shell syntax ";"`,
            ],
            [
              `scp -t $(touch ${bed.dataDir}/pwned)`,
              `xferproxy: command refused: it contains shell syntax "$"`,
            ],
            [`touch ${bed.dataDir}/pwned`, `xferproxy: command "touch" is not allowed`],
            [`sh -c 'touch ${bed.dataDir}/pwned'`, `xferproxy: command "sh" is not allowed`],
          ];
          for (const [command, line] of cases) {
            const result = await bed.ssh(alice, IP.proxy, [command]);
            assertEquals([result.code, result.stdout, result.stderr], [1, "", line + "\n"]);
          }
          const shell = await bed.ssh(alice, IP.proxy, [], { extra: ["-T"] });
          assertEquals([shell.code, shell.stderr], [
            1,
            "xferproxy: interactive shells are not allowed\n",
          ]);
          assertEquals(
            await Deno.stat(`${bed.dataDir}/pwned`).then(() => true, () => false),
            false,
          );
          assertMatch(await bed.log(), /ERR Refused command .*touch.*exit=1/);
        },
      );

      await t.step("round robin alternates between the two internal servers", async () => {
        const seen: string[] = [];
        for (let i = 0; i < 4; i++) seen.push(await serverOf(bed, bob, IP.proxyAlt));
        assertEquals(new Set(seen), new Set([IP.a, IP.b]));
        for (let i = 1; i < seen.length; i++) assertNotEquals(seen[i], seen[i - 1]);
      });

      await t.step("a server that is down is marked faulty and the other one serves", async () => {
        await bed.stopServer("b");
        try {
          for (let i = 0; i < 3; i++) assertEquals(await serverOf(bed, bob, IP.proxyAlt), IP.a);
          const log = (await bed.log()).split("\n").filter((l) => l.includes("198.18.2.3")).join(
            "\n",
          );
          assertMatch(
            log,
            /WARN Server 198\.18\.2\.3:22 is not responding, marked faulty for 120 s: Cannot connect to 198\.18\.2\.3:22/,
          );
          const state = JSON.parse(await Deno.readTextFile(`${bed.dir}/state/balancer.json`));
          assertOk(
            state.faulty[`${IP.b}:22`] > Date.now(),
            "B carries a faulty mark in the shared state",
          );
          assertMatch(log, /DBG Skipping faulty server 198\.18\.2\.3:22/);
        } finally {
          await bed.startServer("b");
        }
      });

      await t.step(
        "a changed or unknown host key is refused and both fingerprints are logged",
        async () => {
          const original = await Deno.readTextFile(bed.knownHostsPath);
          try {
            await Deno.writeTextFile(bed.knownHostsPath, `${IP.a} ${await bed.hostKey("b")}\n`);
            const changed = await bed.ssh(alice, IP.proxy, ["true"]);
            assertEquals([changed.code, changed.stderr], [
              255,
              "xferproxy: host key verification of the internal server failed\n",
            ]);
            assertMatch(
              await bed.log(),
              /ERR Refused: Host key of 198\.18\.2\.2:22 is changed; presented SHA256:\S+, known_hosts has SHA256:\S+/,
            );
            await Deno.writeTextFile(bed.knownHostsPath, `${IP.b} ${await bed.hostKey("b")}\n`);
            const unknown = await bed.ssh(alice, IP.proxy, ["true"]);
            assertEquals(unknown.code, 255);
            assertMatch(await bed.log(), /ERR Refused: No known_hosts entry for 198\.18\.2\.2:22/);
          } finally {
            await Deno.writeTextFile(bed.knownHostsPath, original);
          }
          assertEquals((await bed.ssh(alice, IP.proxy, ["true"])).code, 0);
        },
      );

      await t.step("an encrypted or unreadable keyfile is a clear error", async () => {
        const config = bed.defaultConfig();
        const encrypted = `${bed.dir}/proxy/keys/encrypted`;
        await must(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", encrypted]);
        await Deno.chmod(encrypted, 0o644);
        const unreadable = `${bed.dir}/proxy/keys/root-only`;
        await Deno.copyFile(`${bed.dir}/proxy/keys/squash`, unreadable);
        await Deno.chmod(unreadable, 0o600);
        try {
          const cases: Array<[string, RegExp]> = [
            [
              encrypted,
              /ERR Refused: Keyfile "\S+\/encrypted" is encrypted: use a key without a passphrase/,
            ],
            [unreadable, /ERR Refused: cannot read keyfile: permission denied/],
          ];
          for (const [key, logLine] of cases) {
            await bed.writeConfig(config.replace(`${bed.dir}/proxy/keys/squash`, key));
            const result = await bed.ssh(alice, IP.proxy, ["true"]);
            assertEquals([result.code, result.stderr], [
              255,
              "xferproxy: cannot log in to the internal server (proxy key problem)\n",
            ]);
            assertMatch(await bed.log(), logLine);
          }
        } finally {
          await bed.writeConfig(config);
        }
      });

      await t.step("no matching rule: one line to the client, exit 255, logged", async () => {
        const config = bed.defaultConfig();
        try {
          await bed.writeConfig(
            config.replace(/<rule host_ip="198\.18\.1\.17\/32">[\s\S]*?<\/rule>/, ""),
          );
          const result = await bed.ssh(alice, IP.proxyAlt, ["true"]);
          assertEquals([result.code, result.stderr], [
            255,
            "xferproxy: no proxy rule for 198.18.1.17\n",
          ]);
          assertMatch(await bed.log(), /ERR Refused: no rule matches proxy address 198\.18\.1\.17/);
        } finally {
          await bed.writeConfig(config);
        }
      });

      await t.step("a client killed mid-transfer leaves no process behind", async () => {
        const src = `${bed.dir}/slow.bin`;
        await makeFile(src, 100);
        const child = new Deno.Command("ip", {
          args: [
            ...bed.clientArgs("scp", bob).slice(1),
            "-O",
            "-l",
            "8000",
            src,
            `${IP.proxy}:${bed.dataDir}/killed.bin`,
          ],
          stdout: "null",
          stderr: "null",
        }).spawn();
        try {
          await waitFor(
            "the upstream scp to start",
            async () => (await run(["pgrep", "-u", xfer, "-f", "scp -t"])).code === 0,
            20_000,
          );
          await waitFor(
            "bytes to arrive",
            async () =>
              ((await Deno.stat(`${bed.dataDir}/killed.bin`).catch(() => undefined))?.size ?? 0) >
                0,
            20_000,
          );
          await must(["pkill", "-KILL", "-f", `client/${bob} `]);
        } finally {
          await child.status;
        }
        await waitFor(
          "the proxy session of bob to end",
          async () => (await run(["pgrep", "-u", bob])).code === 1,
          20_000,
        );
        await waitFor(
          "the upstream scp to end",
          async () => (await run(["pgrep", "-u", xfer, "-f", "scp -t"])).code === 1,
          20_000,
        );
        const bobLines = (await bed.log()).split("\n").filter((l) => l.includes("user=xpt_bob"))
          .join("\n");
        assertMatch(
          bobLines,
          /LOG Connection closed \((EOF|client gone|signal)\) session=\S+ user=xpt_bob .*upstream_user=xpt_xfer/,
        );
      });
    } finally {
      await bed.close();
    }
  },
});
