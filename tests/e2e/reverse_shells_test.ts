/**
 * Reverse mode with each login shell an internal account may have: the internal sshd runs every
 * command as `SHELL -c COMMAND`, so the words the policy checked must be the words that shell
 * runs. For sh, bash, dash, zsh, tcsh and BSD csh as the squash account's shell: the attack of
 * issue 19 (item 7), whose quoting tcsh and csh read as an rsync daemon run with an uploaded
 * config, never runs; scp, sftp and rsync sessions work. Needs tcsh, csh and zsh
 * (scripts/install-system-deps.sh).
 */
import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { must, run } from "../testbed/exec.ts";
import { createTestbed, IP, type Testbed, USERS } from "../testbed/reverse_bed.ts";

const isRoot = Deno.uid() === 0;

/** name, path, and whether it reads the attack's quoting as a daemon run (the csh family). */
const SHELLS: ReadonlyArray<readonly [string, string, boolean]> = [
  ["sh", "/bin/sh", false],
  ["bash", "/bin/bash", false],
  ["dash", "/bin/dash", false],
  ["zsh", "/usr/bin/zsh", false],
  ["tcsh", "/usr/bin/tcsh", true],
  // Debian's csh alternative may point at tcsh; BSD csh itself is bsd-csh.
  ["csh", "/usr/bin/bsd-csh", true],
];

/** One word for a POSIX sh script. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/**
 * Runs a real rsync client that asks for daemon module "m" over a "remote shell" which, instead
 * of the command rsync gives it, runs `command` through `sshPrefix`: what a partner does to get
 * an rsync daemon started by a command line the policy passed.
 */
async function rsyncDaemonThrough(
  bed: Testbed,
  sshPrefix: string[],
  command: string,
  name: string,
) {
  const rsh = `${bed.dir}/rsh-${name}`;
  // sshPrefix enters the client namespace; the rsync client already runs there.
  const ssh = sshPrefix.slice(sshPrefix.indexOf("ssh"));
  await Deno.writeTextFile(
    rsh,
    `#!/bin/sh\nexec ${ssh.map(shellQuote).join(" ")} ${shellQuote(command)}\n`,
  );
  await Deno.chmod(rsh, 0o755);
  await Deno.mkdir(`${bed.dir}/got-${name}`);
  return await run(
    [
      "ip",
      "netns",
      "exec",
      bed.ns.client,
      "rsync",
      "-r",
      "-e",
      rsh,
      "x::m/",
      `${bed.dir}/got-${name}/`,
    ],
    { timeoutMs: 30_000 },
  );
}

Deno.test({
  name: "reverse mode with sh, bash, dash, zsh, tcsh or csh as the internal account's shell",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const missing = [];
    for (const [name, path] of SHELLS) if (!(await exists(path))) missing.push(name);
    assertEquals(missing, [], "apt-get install -y tcsh csh zsh");
    for (const [name, shell, cshFamily] of SHELLS) {
      await t.step(name, async (t) => {
        const bed = await createTestbed({ squashShell: shell });
        const { alice, xfer } = USERS;
        const home = `${bed.dir}/home/${xfer}`;
        const marker = (what: string) => `${bed.dataDir}/pwned-${name}-${what}`;
        try {
          assertEquals(
            (await must(["getent", "passwd", xfer])).trim().split(":")[6],
            shell,
          );

          await t.step("an rsync daemon config smuggled past the policy never runs", async () => {
            // Uploaded through the proxy like any file: a daemon config whose module runs a
            // command before each transfer, into the internal account's home.
            await Deno.mkdir(`${bed.dataDir}/pub-${name}`, { mode: 0o755 });
            await Deno.writeTextFile(`${bed.dataDir}/pub-${name}/f.txt`, "f\n");
            const conf = (what: string) =>
              `[m]\npath = ${bed.dataDir}/pub-${name}\nuse chroot = no\npre-xfer exec = /usr/bin/touch ${
                marker(what)
              }\n`;
            for (const what of ["proxy", "direct"]) {
              const local = `${bed.dir}/up-${what}.conf`;
              await Deno.writeTextFile(local, conf(what));
              await Deno.chmod(local, 0o644);
              const up = await run([
                ...bed.clientArgs("scp", alice),
                local,
                `${IP.proxy}:up-${what}.conf`,
              ]);
              assertEquals(up.code, 0, up.stderr);
              assertEquals(await Deno.readTextFile(`${home}/up-${what}.conf`), conf(what));
            }
            // sh reads one path ending in a quote; tcsh and csh read `\ --daemon --config=… \`.
            const attack = (what: string) =>
              `rsync --server . "\\" --daemon --config=${home}/up-${what}.conf "\\"`;

            // The same command straight to the internal server, no proxy in between: proof that
            // the attack works against this shell when nothing stops it.
            const direct = await rsyncDaemonThrough(
              bed,
              await bed.directSshArgs(),
              attack("direct"),
              "direct",
            );
            assertEquals(await exists(marker("direct")), cshFamily, direct.stderr);

            const proxied = await rsyncDaemonThrough(
              bed,
              [...bed.sshArgs(alice), IP.proxy],
              attack("proxy"),
              "proxy",
            );
            assertEquals(
              await exists(marker("proxy")),
              false,
              `the daemon ran its pre-xfer exec: ${proxied.stderr}`,
            );
            assertOk(proxied.code !== 0);
            assertIncludes(
              proxied.stderr,
              "xferproxy: command refused: it has a backslash inside double quotes, which csh and tcsh keep and sh removes (use single quotes)",
            );
          });

          await t.step(
            "scp, legacy scp, sftp and rsync work, also into a name with a space",
            async () => {
              const dest = `${bed.dataDir}/in ${name}`;
              await Deno.mkdir(dest, { mode: 0o1777 });
              await Deno.chmod(dest, 0o1777);
              const src = `${bed.dir}/payload.txt`;
              await Deno.writeTextFile(src, `through ${name}\n`);
              await Deno.chmod(src, 0o644);
              for (const legacy of [false, true]) {
                const target = `${dest}/scp${legacy ? "-legacy" : ""}.txt`;
                // Legacy scp hands the path to the shell upstream as typed: quoted for all six.
                const remote = legacy ? `'${target}'` : target;
                const scp = [...bed.clientArgs("scp", alice), ...(legacy ? ["-O"] : [])];
                const up = await run([...scp, src, `${IP.proxy}:${remote}`]);
                assertEquals(up.code, 0, up.stderr);
                assertEquals(await Deno.readTextFile(target), `through ${name}\n`);
              }

              const batch = `${bed.dir}/batch`;
              await Deno.writeTextFile(
                batch,
                `put ${src} "${dest}/sftp.txt"\nget "${dest}/sftp.txt" ${bed.dir}/sftp-back.txt\n`,
              );
              const sftp = await run([...bed.clientArgs("sftp", alice), "-b", batch, IP.proxy]);
              assertEquals(sftp.code, 0, sftp.stderr);
              assertEquals(await Deno.readTextFile(`${dest}/sftp.txt`), `through ${name}\n`);
              assertEquals(
                await Deno.readTextFile(`${bed.dir}/sftp-back.txt`),
                `through ${name}\n`,
              );

              // rsync escapes the space (and other shell characters) with a backslash.
              const tree = `${bed.dir}/tree`;
              await Deno.mkdir(`${tree}/sub dir`, { recursive: true });
              await Deno.writeTextFile(`${tree}/sub dir/b!{c}.txt`, "b\n");
              const rsync = (from: string, to: string) =>
                run([...bed.rsyncArgs(alice), "-a", from, to]);
              const up = await rsync(`${tree}/`, `${IP.proxy}:${dest}/tree/`);
              assertEquals(up.code, 0, up.stderr);
              assertEquals(await Deno.readTextFile(`${dest}/tree/sub dir/b!{c}.txt`), "b\n");
              const down = await rsync(`${IP.proxy}:${dest}/tree/`, `${bed.dir}/tree-back/`);
              assertEquals(down.code, 0, down.stderr);
              assertEquals(
                await Deno.readTextFile(`${bed.dir}/tree-back/sub dir/b!{c}.txt`),
                "b\n",
              );
            },
          );
        } finally {
          await bed.close();
        }
      });
    }
  },
});
