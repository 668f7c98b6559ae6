/**
 * dist/xferproxy as users get it: one file, copied alone to a fresh place with the checkout
 * hidden (a private mount namespace), run by root and by an unprivileged user without a home,
 * and a real reverse session through it.
 */
import { assertEquals, assertMatch } from "../_assert.ts";
import { inPrivateMounts, run } from "../testbed/exec.ts";
import { BINARY, ROOT } from "../testbed/paths.ts";
import { createTestbed, IP, USERS } from "../testbed/reverse_bed.ts";

const isRoot = Deno.uid() === 0;

/** Runs a shell script in a private mount namespace where the checkout, /tmp and /var/cache are empty. */
async function hidden(script: string, copy: string): Promise<{ code: number; out: string }> {
  const result = await run(
    inPrivateMounts(
      [
        "set -u",
        // The checkout, /tmp and /var/cache are hidden below: a working directory in them (a
        // clone under /tmp) would be gone for every program run.
        "cd /",
        "mkdir -p /run/xferproxy-dist-test",
        "mount -t tmpfs -o mode=755 xp-ship /run/xferproxy-dist-test",
        `cp ${copy} /run/xferproxy-dist-test/xferproxy`,
        // The DNAT service's unit, and what runs a command as restricted as it says.
        `cp ${ROOT}tests/testbed/unit_sandbox.py ${ROOT}packaging/systemd/xferproxy-dnat.service /run/xferproxy-dist-test/`,
        `mount -t tmpfs xp-hidden ${ROOT.replace(/\/$/, "")}`,
        "mount -t tmpfs -o mode=1777 xp-tmp /tmp",
        "mount -t tmpfs -o mode=755 xp-cache /var/cache",
        "X=/run/xferproxy-dist-test/xferproxy",
        script,
      ].join("\n"),
    ),
    { timeoutMs: 120_000 },
  );
  return { code: result.code, out: result.stdout + result.stderr };
}

/** The `key: value` lines a hidden() script printed with say(). */
function saidBy(out: string): (key: string) => string | undefined {
  return (key) => out.split("\n").find((l) => l.startsWith(`${key}: `))?.slice(key.length + 2);
}

/** say KEY COMMAND: prints "KEY: " and the command's output and errors on one line. */
const SAY =
  `say() { key=$1; shift; printf '%s: %s\\n' "$key" "$(sh -c "$*" 2>&1 | tr '\\n' ' ')"; }`;
const VERSION_LINE = /^xferproxy \d+\.\d+\.\d+ \(deno /;

Deno.test({
  name:
    "the single file runs alone, for an unprivileged user and for root, and refuses what is unsafe",
  ignore: !isRoot,
  async fn() {
    const { code, out } = await hidden(
      `
      ${SAY}
      say checkout "ls -A ${ROOT} 2>/dev/null | wc -l"
      say nobody1 "su -s /bin/sh nobody -c '$X version'"
      say private "stat -c '%U %a' /tmp/xferproxy-65534"
      say nobody2 "su -s /bin/sh nobody -c '$X check config --config /nonexistent; echo rc=\\$?'"
      say tty1 "su -s /bin/sh nobody -c 'script -qc \\"$X version\\" /dev/null'"
      # Root's first run as the DNAT service's unit allows it (no CAP_CHOWN, no CAP_DAC_OVERRIDE):
      # the service can unpack the runtime itself.
      U=/run/xferproxy-dist-test
      say unit "python3 $U/unit_sandbox.py $U/xferproxy-dnat.service -- $X version 2>&1 | grep -v '^unit_sandbox: '"
      say root "$X version"
      say shared "stat -c '%U %a' /var/cache/xferproxy/*/ | sort -u"
      say sealed "cd /var/cache/xferproxy/*/sharedcache && stat -c '%U %a' . && stat -c '%U %a %s %n' *-wal | sort -u | cut -d' ' -f1-3 | sort -u"
      # Deno opens root's sealed caches for another user (no fallback to caches in memory).
      R=$(ls -d /var/cache/xferproxy/*/)
      say opened "su -s /bin/sh nobody -c 'DENO_DIR=\${R}sharedcache \${R}deno run -L debug --no-prompt --cached-only --frozen --config \${R}deno.json -P=xferproxy \${R}app/main.js version 2>&1' | grep -c 'Failed creating cache db'"
      before=$(cat /var/cache/xferproxy/*/sharedcache/* | sha256sum)
      rm -rf /tmp/xferproxy-65534
      say nobody3 "su -s /bin/sh nobody -c '$X version'; ls -A /tmp | grep -c xferproxy; [ \\"$before\\" = \\"\\$(cat /var/cache/xferproxy/*/sharedcache/* | sha256sum)\\" ] && echo sealed-unchanged"
      say tty3 "su -s /bin/sh nobody -c 'script -qc \\"$X check config --config /nonexistent\\" /dev/null'"
      head -c 2000000 $X >/run/xferproxy-dist-test/broken; chmod 755 /run/xferproxy-dist-test/broken
      rm -rf /var/cache/xferproxy
      say broken "/run/xferproxy-dist-test/broken version; echo rc=\\$?"
      `,
      BINARY,
    );
    assertEquals(code, 0, out);
    const said = saidBy(out);
    assertEquals(said("checkout"), "0 ");
    assertMatch(said("nobody1") ?? "", VERSION_LINE);
    assertEquals(said("private"), "nobody 700 ");
    assertMatch(said("nobody2") ?? "", /Cannot load config "\/nonexistent": file not found.*rc=1/s);
    // On a terminal too, Deno says nothing about the caches it is not given.
    assertMatch(said("tty1") ?? "", /^xferproxy \d+\.\d+\.\d+ \(deno [^)]*\)\s*$/);
    assertMatch(said("unit") ?? "", VERSION_LINE);
    assertMatch(said("root") ?? "", /^xferproxy \d/);
    assertEquals(said("shared"), "root 755 ");
    // Root's unpacked runtime serves every user, and then nothing is made in /tmp.
    assertEquals(said("sealed"), "root 555 root 444 0 ");
    assertEquals(said("opened"), "0 ");
    assertMatch(said("nobody3") ?? "", /^xferproxy \d.* 0 sealed-unchanged $/);
    assertMatch(
      said("tty3") ?? "",
      /^Cannot load config "\/nonexistent": file not found[^\n]*\s*$/,
    );
    assertMatch(
      said("broken") ?? "",
      /broken is damaged \(payload checksum mismatch\): copy it again\s*rc=1/,
    );
  },
});

Deno.test({
  name: "another user's file at /tmp/xferproxy-<uid> never stops a run (issue 19, item 11)",
  ignore: !isRoot,
  async fn() {
    const { code, out } = await hidden(
      `
      ${SAY}
      $X version >/dev/null
      mkdir -m 777 /tmp/xferproxy-65534
      say shared "su -s /bin/sh nobody -c '$X version; echo rc=\\$?'; ls -A /tmp/xferproxy-65534 | wc -l; ls -d /tmp/xferproxy-65534.* 2>/dev/null | wc -l"
      rm -rf /var/cache/xferproxy
      say planted "su -s /bin/sh nobody -c '$X version; echo rc=\\$?'; ls -A /tmp/xferproxy-65534 | wc -l; stat -c '%U %a' /tmp/xferproxy-65534.*"
      say again "su -s /bin/sh nobody -c '$X version'; ls -d /tmp/xferproxy-65534.* | wc -l"
      rm -rf /tmp/xferproxy-65534 /tmp/xferproxy-65534.*
      mkdir -m 700 /tmp/elsewhere; ln -s /tmp/elsewhere /tmp/xferproxy-65534
      say symlink "su -s /bin/sh nobody -c '$X version; echo rc=\\$?'; ls -A /tmp/elsewhere | wc -l; stat -c '%U %a' /tmp/xferproxy-65534.*"
      `,
      BINARY,
    );
    assertEquals(code, 0, out);
    const said = saidBy(out);
    // Root's runtime is there: /tmp is not touched at all.
    assertMatch(said("shared") ?? "", /^xferproxy \d.*rc=0 0 0 $/);
    // Without it: a private directory of a name the other user could not take, found again later.
    assertMatch(said("planted") ?? "", /^xferproxy \d.*rc=0 0 nobody 700 $/);
    assertMatch(said("again") ?? "", /^xferproxy \d.* 1 $/);
    assertMatch(said("symlink") ?? "", /^xferproxy \d.*rc=0 0 nobody 700 $/);
  },
});

Deno.test({
  name:
    "a copy left by a removed account with the same uid is verified, and its code cache is never read (issue 19, item 12)",
  ignore: !isRoot,
  async fn() {
    const { code, out } = await hidden(
      `
      ${SAY}
      su -s /bin/sh nobody -c "$X version" >/dev/null
      runtime=$(ls -d /tmp/xferproxy-65534/*/ | grep -v deno_dir)
      # What the removed account left: its program in the runtime, the directory open to others,
      # and a code cache of its own.
      chmod u+w $runtime/app; printf 'console.log("PLANTED PROGRAM");\\n' >$runtime/app/main.js
      chmod 777 /tmp/xferproxy-65534
      mkdir -p /tmp/xferproxy-65534/deno_dir
      head -c 8192 /dev/urandom >/tmp/xferproxy-65534/deno_dir/v8_code_cache_v2
      chown -R nobody /tmp/xferproxy-65534
      say stale "su -s /bin/sh nobody -c '$X version; echo rc=\\$?'; stat -c %a /tmp/xferproxy-65534"
      say program "cat $runtime/app/main.js | grep -c PLANTED"
      # A runtime that is root's: a user's code cache is not read either.
      $X version >/dev/null
      mkdir -p /tmp/xferproxy-65534/deno_dir
      head -c 8192 /dev/urandom >/tmp/xferproxy-65534/deno_dir/v8_code_cache_v2
      chown -R nobody /tmp/xferproxy-65534/deno_dir
      before=$(sha256sum </tmp/xferproxy-65534/deno_dir/v8_code_cache_v2)
      say cache "su -s /bin/sh nobody -c '$X version' >/dev/null; ls -A /tmp/xferproxy-65534/deno_dir; [ \\"$before\\" = \\"\\$(sha256sum </tmp/xferproxy-65534/deno_dir/v8_code_cache_v2)\\" ] && echo unchanged"
      `,
      BINARY,
    );
    assertEquals(code, 0, out);
    const said = saidBy(out);
    assertMatch(said("stale") ?? "", /^xferproxy \d.*rc=0 700 $/);
    assertEquals(said("program"), "0 ");
    assertEquals(said("cache"), "v8_code_cache_v2 unchanged ");
  },
});

Deno.test({
  name: "a reverse session through a copy of the shipped file, the checkout hidden from sshd",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bed = await createTestbed({ shippedCopy: true });
    try {
      const { alice } = USERS;
      const echo = await bed.ssh(alice, IP.proxy, ["cat"], { stdin: "shipped\n" });
      assertEquals([echo.code, echo.stdout, echo.stderr], [0, "shipped\n", ""]);
      // A FASP-style session: the sudo call runs the copy too (sudoers names it).
      const udp = await bed.ssh(alice, IP.proxy, [`python3 ${ROOT}tests/udp_echo.py 33001`]);
      assertEquals(udp.code, 0, udp.stderr);
      assertMatch(await bed.log(), new RegExp(`user=${USERS.alice} .*udp=forwarded`));
      assertEquals(await Deno.stat(`${bed.dir}/shipped/xferproxy`).then((i) => i.isFile), true);
    } finally {
      await bed.close();
    }
  },
});
