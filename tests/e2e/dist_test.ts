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
        "mkdir -p /run/xferproxy-dist-test",
        "mount -t tmpfs -o mode=755 xp-ship /run/xferproxy-dist-test",
        `cp ${copy} /run/xferproxy-dist-test/xferproxy`,
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

Deno.test({
  name:
    "the single file runs alone, for an unprivileged user and for root, and refuses what is unsafe",
  ignore: !isRoot,
  async fn() {
    const { code, out } = await hidden(
      `
      say() { key=$1; shift; printf '%s: %s\n' "$key" "$(sh -c "$*" 2>&1 | tr '\n' ' ')"; }
      say checkout "ls -A ${ROOT} 2>/dev/null | wc -l"
      say nobody1 "su -s /bin/sh nobody -c '$X version'"
      say private "stat -c '%U %a' /tmp/xferproxy-65534"
      say nobody2 "su -s /bin/sh nobody -c '$X check config --config /nonexistent; echo rc=\\$?'"
      say root "$X version"
      say shared "stat -c '%U %a' /var/cache/xferproxy/*/ | sort -u"
      rm -rf /tmp/xferproxy-65534
      say nobody3 "su -s /bin/sh nobody -c '$X version'; ls /tmp/xferproxy-65534 | grep -c '^[0-9a-f]*$'; ls /tmp/xferproxy-65534"
      head -c 2000000 $X >/run/xferproxy-dist-test/broken; chmod 755 /run/xferproxy-dist-test/broken
      rm -rf /var/cache/xferproxy
      say broken "/run/xferproxy-dist-test/broken version; echo rc=\\$?"
      rm -rf /tmp/xferproxy-65534; mkdir -m 777 /tmp/xferproxy-65534
      say planted "su -s /bin/sh nobody -c '$X version; echo rc=\\$?'"
      `,
      BINARY,
    );
    assertEquals(code, 0, out);
    const said = (key: string) =>
      out.split("\n").find((l) => l.startsWith(`${key}: `))?.slice(key.length + 2);
    assertEquals(said("checkout"), "0 ");
    assertMatch(said("nobody1") ?? "", /^xferproxy \d+\.\d+\.\d+ \(deno /);
    assertEquals(said("private"), "nobody 700 ");
    assertMatch(said("nobody2") ?? "", /Cannot load config "\/nonexistent": file not found.*rc=1/s);
    assertMatch(said("root") ?? "", /^xferproxy \d/);
    assertEquals(said("shared"), "root 755 ");
    // Root's unpacked runtime serves every user: only the user's own code cache is private.
    assertMatch(said("nobody3") ?? "", /^xferproxy \d.* 0 deno_dir $/);
    assertMatch(
      said("broken") ?? "",
      /broken is damaged \(payload checksum mismatch\): copy it again\s*rc=1/,
    );
    assertMatch(
      said("planted") ?? "",
      /\/tmp\/xferproxy-65534 is not a private directory of uid 65534: remove it, or run xferproxy once as root\s*rc=1/,
    );
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
