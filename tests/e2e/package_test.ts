/**
 * The packages make dist writes: the .deb installed for real into a copy-on-write view of this
 * host (probes/package_install.sh), upgraded, removed and purged; the .rpm's files, modes,
 * config flags and scripts read with rpm.
 */
import { assertEquals, assertIncludes, assertMatch } from "../_assert.ts";
import { must, run } from "../testbed/exec.ts";
import { ROOT } from "../testbed/paths.ts";

const isRoot = Deno.uid() === 0;
const VERSION = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).version as string;
const DEB = `${ROOT}dist/xferproxy_${VERSION}_amd64.deb`;
const RPM = `${ROOT}dist/xferproxy-${VERSION}-1.x86_64.rpm`;

Deno.test({
  name: "the .deb installs, keeps an edited config on upgrade, removes and purges cleanly",
  ignore: !isRoot,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "xferproxy-pkg-" });
    try {
      const result = await run([
        "unshare",
        "--mount",
        "--propagation",
        "private",
        `${ROOT}tests/e2e/probes/package_install.sh`,
        DEB,
        work,
      ], { timeoutMs: 180_000 });
      assertEquals(result.code, 0, result.stderr);
      const said = Object.fromEntries(
        result.stdout.trim().split("\n").map((
          l,
        ) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]),
      );
      assertEquals(said, {
        installed: "install ok installed",
        binary: "root:root 755",
        units: "xferproxy-dnat.service xferproxy-forward.service",
        sudoers: "root:root 440 valid",
        config: "root:root 644",
        keys: "root:root 700",
        group: "xferproxy",
        state: "root:root 755",
        balancer: "root:xferproxy 2770",
        logs: "root:xferproxy 2770",
        runtime: "1",
        sshd_example: "example-only",
        version: "xferproxy",
        check: `OK: "/etc/xferproxy/aspera.conf" is valid (reverse proxy off; forward proxy off)`,
        upgraded: "2",
        removed: "3 config-kept",
        purged: "3 no-group",
      });
      // Nothing reached the host.
      assertEquals((await run(["getent", "group", "xferproxy"])).code, 2);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "the .rpm holds the same files, modes and config flags, and the same scripts",
  ignore: !isRoot,
  async fn() {
    // path size mtime digest mode owner group isconfig isdoc ...
    const dump = (await must(["rpm", "-qp", "--dump", RPM])).trim().split("\n")
      .map((l) => l.split(" ")).map((f) => `${f[0]} ${f[4]} ${f[5]}:${f[6]} config=${f[7]}`);
    for (
      const line of [
        "/usr/bin/xferproxy 0100755 root:root config=0",
        "/etc/sudoers.d/xferproxy 0100440 root:root config=1",
        "/etc/xferproxy/aspera.conf 0100644 root:root config=1",
        "/usr/lib/systemd/system/xferproxy-dnat.service 0100644 root:root config=0",
        "/usr/lib/systemd/system/xferproxy-forward.service 0100644 root:root config=0",
        "/usr/share/doc/xferproxy/sshd_config.example 0100644 root:root config=0",
      ]
    ) {
      assertIncludes(dump.join("\n"), line);
    }
    // noreplace: an edited config is kept (as .rpmnew for the new one).
    const flags = await must(["rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", RPM]);
    assertMatch(flags, /cn\s+\/etc\/xferproxy\/aspera\.conf/);
    const scripts = await must(["rpm", "-qp", "--scripts", RPM]);
    for (
      const part of [
        "groupadd --system xferproxy",
        "visudo -cf /etc/sudoers.d/xferproxy",
        "/usr/bin/xferproxy version",
        "xferproxy dnat reap --all",
      ]
    ) {
      assertIncludes(scripts, part);
    }
    // The same payload as the .deb: one build, two formats.
    const fromDeb = await Deno.makeTempDir();
    try {
      await must(["dpkg-deb", "-x", `${ROOT}dist/xferproxy_${VERSION}_amd64.deb`, fromDeb]);
      const sum = async (path: string) => (await must(["sha256sum", path])).split(" ")[0];
      assertEquals(await sum(`${fromDeb}/usr/bin/xferproxy`), await sum(`${ROOT}dist/xferproxy`));
    } finally {
      await Deno.remove(fromDeb, { recursive: true });
    }
  },
});
