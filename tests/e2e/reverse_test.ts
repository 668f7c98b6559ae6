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
import { must, run, waitFor } from "../testbed/exec.ts";
import { CHECK_FRESH_MS } from "../../src/reverse/probe_reuse.ts";
import { createTestbed, IP, type Testbed, USERS } from "../testbed/reverse_bed.ts";

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

      await t.step(
        "the log names the client, the rule's server and the handed-over pid",
        async () => {
          const log = await bed.log();
          assertMatch(
            log,
            new RegExp(
              `LOG Received connection request from 198\\.18\\.1\\.2 session=[0-9a-f-]{36} user=${USERS.alice}`,
            ),
          );
          assertMatch(
            log,
            new RegExp(
              `LOG Handing over to ssh for server 198\\.18\\.2\\.2:22 .*upstream_user=${USERS.xfer} pid=\\d+ udp=none via=service host_key=SHA256:\\S+`,
            ),
          );
        },
      );

      await t.step(
        "the session is OpenSSH's ssh: pinned options, minimal environment, default signals, no inherited fds",
        async () => {
          const session = bed.ssh(alice, IP.proxy, ["sleep", "30"]);
          try {
            let pid = 0;
            await waitFor("the handed-over session", async () => {
              const m = [...(await bed.log()).matchAll(/request="sleep 30".*\n.*pid=(\d+)/g)];
              pid = Number(m.at(-1)?.[1] ?? 0);
              return pid > 0 &&
                (await run(["pgrep", "-u", xfer, "-f", "^sleep 30|sh -c sleep 30"])).code === 0;
            }, 20_000);
            const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
            assertEquals(argv.slice(0, 3), ["xferproxy-ssh", "-F", "none"]);
            assertEquals(argv.slice(-4, -1), ["--", IP.a, "sleep 30"]);
            assertIncludes(argv.join(" "), "-o StrictHostKeyChecking=yes");
            assertEquals(await Deno.readLink(`/proc/${pid}/exe`), "/usr/bin/ssh");
            const env = (await Deno.readTextFile(`/proc/${pid}/environ`)).split("\0").filter(
              Boolean,
            );
            assertEquals(env.map((e) => e.split("=")[0]).sort(), [
              "HOME",
              "LOGNAME",
              "PATH",
              "USER",
            ]);
            // Signal state as an ssh started normally (the client's): nothing blocked, and of the
            // standard signals only SIGPIPE ignored, which ssh sets itself. (32 and up are glibc's.)
            const signals = async (p: string | number) => {
              const status = await Deno.readTextFile(`/proc/${p}/status`);
              const field = (name: string) =>
                BigInt(
                  "0x" + (new RegExp(`^${name}:\\s+([0-9a-f]+)$`, "m").exec(status)?.[1] ?? "x"),
                );
              return { blocked: field("SigBlk"), ignored: field("SigIgn") & 0x7fffffffn };
            };
            // The native client inherits what this test runner ignores (SIGQUIT under nohup or a
            // non-interactive shell's background job); sshd's sessions inherit nothing of it.
            const inherited = (await signals("self")).ignored & ~(1n << 12n);
            const native = (await must(["pgrep", "-o", "-f", `client/${alice} .*sleep 30`])).trim();
            assertEquals(await signals(native), { blocked: 0n, ignored: (1n << 12n) | inherited });
            assertEquals(await signals(pid), { blocked: 0n, ignored: 1n << 12n });
            // Only sshd's pipes (as the ForceCommand shell holds them; ssh moves them around and
            // puts /dev/null in their place) and ssh's socket: nothing of Deno's.
            const parent = (await must(["ps", "-o", "ppid=", "-p", String(pid)])).trim();
            const stdio = new Set<string>(["/dev/null"]);
            for (const fd of [0, 1, 2]) stdio.add(await Deno.readLink(`/proc/${parent}/fd/${fd}`));
            for await (const entry of Deno.readDir(`/proc/${pid}/fd`)) {
              const target = await Deno.readLink(`/proc/${pid}/fd/${entry.name}`);
              assertOk(
                stdio.has(target) || target.startsWith("socket:"),
                `fd ${entry.name} -> ${target}`,
              );
            }
          } finally {
            await run(["pkill", "-u", xfer, "-f", "^sleep 30|sh -c sleep 30"]);
            await session;
          }
        },
      );

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
          ...bed.rsyncArgs(alice),
          "-a",
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

      await t.step("a pty requested by the client passes through, silently", async () => {
        const result = await bed.ssh(alice, IP.proxy, ["tty"], { extra: ["-tt"] });
        assertEquals(result.code, 0, result.stderr);
        // Only the command's output: ssh's "Connection to <internal server> closed." stays quiet.
        assertMatch(result.stdout, /^\/dev\/pts\/\d+\r?\n$/);
      });

      await t.step(
        "a command killed by a signal ends the session with 255, as a native double hop does",
        async () => {
          const session = bed.ssh(alice, IP.proxy, ["sleep", "41"]);
          await waitFor(
            "the upstream command",
            async () => (await run(["pgrep", "-u", xfer, "-f", "sleep 41"])).code === 0,
            20_000,
          );
          // The shell and sleep both: an orphan holding the channel's pipes would keep an
          // OpenSSH session open too, until it ends.
          await must(["pkill", "-KILL", "-u", xfer, "-f", "sleep 41"]);
          const result = await session;
          assertEquals(result.code, 255);
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
          // A command that is not UTF-8 (the byte 0xff, which a JavaScript string cannot hold:
          // bash's printf puts it in ssh's argv): refused as malformed input, with 255.
          const bytes = await run([
            "bash",
            "-c",
            `exec "$@" "$(printf 'scp -t \\377')"`,
            "bash",
            ...bed.sshArgs(alice),
            IP.proxy,
          ]);
          assertEquals([bytes.code, bytes.stdout, bytes.stderr], [
            255,
            "",
            "xferproxy: SSH_ORIGINAL_COMMAND is not UTF-8 text\n",
          ]);
          assertEquals(
            await Deno.stat(`${bed.dataDir}/pwned`).then(() => true, () => false),
            false,
          );
          assertMatch(await bed.log(), /ERR Refused command .*touch.*exit=1/);
        },
      );

      await t.step(
        "a name as AD/LDAP-joined hosts have it (capitals, dot, @domain) works end to end",
        async () => {
          const carol = USERS.carol;
          // Her own account upstream, her own key at /home/$(user)/.ssh: rule 2 on the second address.
          const who = await bed.ssh(carol, IP.proxyAlt, ["printenv", "USER"]);
          assertEquals([who.code, who.stdout, who.stderr], [0, `${carol}\n`, ""]);
          const src = `${bed.dir}/carol.bin`;
          await makeFile(src, 1);
          const target = `${bed.dataDir}/carol.bin`;
          const copied = await run([
            ...bed.clientArgs("scp", carol),
            src,
            `${IP.proxyAlt}:${target}`,
          ]);
          assertEquals(copied.code, 0, copied.stderr);
          assertEquals(await sha256(target), await sha256(src));
          assertEquals(await owner(target), carol);
          assertMatch(await bed.log(), new RegExp(`user="?${carol.replace(".", "\\.")}"? `));
        },
      );

      await t.step(
        "allowed programs cannot be made to run commands upstream (option smuggling)",
        async () => {
          const pwned = (name: string) => `${bed.dataDir}/smuggled-${name}`;
          // What a partner could have uploaded earlier: a script and an rsync daemon config.
          const script = `${bed.dataDir}/uploaded-script`;
          await Deno.writeTextFile(script, `#!/bin/sh\ntouch ${pwned("scp-S")}\n`, { mode: 0o755 });
          await Deno.chmod(script, 0o755);
          const conf = `${bed.dataDir}/uploaded.conf`;
          await Deno.writeTextFile(
            conf,
            `[m]\npath = ${bed.dataDir}\nuse chroot = no\npre-xfer exec = /usr/bin/touch ${
              pwned("rsync")
            }\n`,
          );
          const attacks: Array<[string, string, string?]> = [
            [
              `scp -o 'ProxyCommand=touch ${pwned("scp-o")}' ${script} x@198.18.9.9:/x`,
              `scp option "-o" is refused: it sets ssh options such as ProxyCommand`,
            ],
            [
              `scp -S ${script} ${script} x@198.18.9.9:/x`,
              `scp option "-S" is refused: it names a program to run`,
            ],
            [
              `rsync --server --daemon --config=${conf} .`,
              `rsync option "--daemon" is refused`,
              "@RSYNCD: 31.0\nm\n",
            ],
          ];
          try {
            for (const [command, why, stdin] of attacks) {
              const result = await bed.ssh(alice, IP.proxy, [command], stdin ? { stdin } : {});
              assertEquals(result.code, 1, command);
              assertMatch(result.stderr, new RegExp(`^xferproxy: command refused: ${why}`));
            }
            for (const name of ["scp-o", "scp-S", "rsync"]) {
              assertEquals(await Deno.stat(pwned(name)).then(() => name, () => ""), "");
            }
          } finally {
            for (const path of [script, conf, ...["scp-o", "scp-S", "rsync"].map(pwned)]) {
              await Deno.remove(path).catch(() => {});
            }
          }
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
          // B answered the round-robin step just before: within CHECK_FRESH_MS of that check the
          // service sends sessions to it unchecked (docs/reverse.md says so), and with sessions as
          // quick as now the next one came within it (255 from ssh, once in a fresh-clone run).
          await new Promise((resolve) => setTimeout(resolve, CHECK_FRESH_MS + 200));
          for (let i = 0; i < 3; i++) assertEquals(await serverOf(bed, bob, IP.proxyAlt), IP.a);
          const log = (await bed.log()).split("\n").filter((l) => l.includes("198.18.2.3")).join(
            "\n",
          );
          assertMatch(
            log,
            /WARN Server 198\.18\.2\.3:22 is not responding, marked faulty for 120 s: Cannot connect to 198\.18\.2\.3:22/,
          );
          // The mark lives in the DNAT service, which tried B itself: no file a group member
          // could write carries it.
          assertEquals(
            await Deno.stat(`${bed.dir}/state/balancer/balancer.json`).then(
              () => true,
              () => false,
            ),
            false,
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
        // The session's own process (ssh since the hand-off) is gone too.
        const handed = [
          ...(await bed.log()).matchAll(new RegExp(`user=${USERS.bob} .*pid=(\\d+)`, "g")),
        ].at(-1);
        assertOk(handed, "bob's session was handed over");
        assertEquals(await Deno.stat(`/proc/${handed[1]}`).then(() => true, () => false), false);
      });
    } finally {
      await bed.close();
    }
  },
});

Deno.test({
  name: "reverse mode takes nothing from a client's environment but XFERPROXY_HOST",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // An administrator who accepted every xferproxy variable: the session must still ignore them.
    const bed = await createTestbed({ acceptEnv: "XFERPROXY_*" });
    const { alice } = USERS;
    const evil = `${bed.dir}/evil.conf`;
    const pwned = `${bed.dataDir}/env-pwned`;
    try {
      // A config a partner could have placed: the same rules, but every command allowed.
      await Deno.writeTextFile(
        evil,
        bed.defaultConfig().replace(/<command>ascp<\/command>/, "<command>*</command>"),
        { mode: 0o644 },
      );
      await Deno.chmod(evil, 0o644);
      const result = await bed.ssh(alice, IP.proxy, [`touch ${pwned}`], {
        extra: [
          "-o",
          `SetEnv=XFERPROXY_CONFIG=${evil} XFERPROXY_BIN=/bin/false`,
        ],
      });
      assertEquals([result.code, result.stderr], [
        1,
        `xferproxy: command "touch" is not allowed\n`,
      ]);
      assertEquals(await Deno.stat(pwned).then(() => true, () => false), false);
    } finally {
      await Deno.remove(pwned).catch(() => {});
      await bed.close();
    }
  },
});
