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
        "--net",
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
      const { exposure_dnat: dnat, exposure_forward: forward, ...rest } = said;
      assertEquals(rest, {
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
        root_logs: "root:xferproxy 2750",
        runtime: "unpacked",
        sshd_example: "example-only",
        version: "xferproxy",
        check: `OK: "/etc/xferproxy/aspera.conf" is valid (reverse proxy off; forward proxy off)`,
        // Turned on at install (in this test's own network namespace), as Aspera's installer does.
        forwarding: "1",
        sysusers: "g xferproxy -",
        // Debian's way: the DNAT service enabled (and started, where systemd runs).
        enabled: "xferproxy-dnat.service",
        man: `.TH XFERPROXY 1`,
        completion: "system del",
        copyright:
          `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/ xferproxy (${VERSION}) unstable; urgency=medium`,
        verify: "verified",
        logrotate: "root xferproxy.log xferproxy.log.1 root:xferproxy 660 0",
        root_logrotate: "xferproxy.log xferproxy.log.1 root:xferproxy 640 0",
        upgraded: "2",
        removed: "3 config-kept",
        purged: "3 no-group 0",
      });
      // systemd-analyze security: 3.0 or less.
      for (const [unit, exposure] of Object.entries({ dnat, forward })) {
        assertEquals(Number(exposure) > 0 && Number(exposure) <= 3.0, true, `${unit}: ${exposure}`);
      }
      // Nothing reached the host.
      assertEquals((await run(["getent", "group", "xferproxy"])).code, 2);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

/** The scriptlets of the .rpm, by name (pre, post, preun, postun). */
async function rpmScripts(): Promise<Record<string, string>> {
  const text = await must(["rpm", "-qp", "--scripts", RPM]);
  const out: Record<string, string> = {};
  const names: Record<string, string> = {
    preinstall: "pre",
    postinstall: "post",
    preuninstall: "preun",
    postuninstall: "postun",
  };
  for (const part of text.split(/^(?=\w+ scriptlet \(using)/m)) {
    const name = names[/^(\w+) scriptlet/.exec(part)?.[1] ?? ""];
    if (name) out[name] = part.slice(part.indexOf("\n") + 1);
  }
  return out;
}

Deno.test({
  name: "the .rpm: the same files, its own directories and group, Red Hat's scripts",
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
        "/etc/logrotate.d/xferproxy 0100644 root:root config=1",
        "/usr/lib/systemd/system/xferproxy-dnat.service 0100644 root:root config=0",
        "/usr/lib/systemd/system/xferproxy-forward.service 0100644 root:root config=0",
        "/usr/lib/sysusers.d/xferproxy.conf 0100644 root:root config=0",
        "/usr/lib/sysctl.d/60-xferproxy.conf 0100644 root:root config=0",
        "/usr/share/man/man1/xferproxy.1.gz 0100644 root:root config=0",
        "/usr/share/bash-completion/completions/xferproxy 0100644 root:root config=0",
        "/usr/share/licenses/xferproxy/LICENSE 0100644 root:root config=0",
        "/usr/share/doc/xferproxy/sshd_config.example 0100644 root:root config=0",
        // Its directories, with the group made in %pre before the files land.
        "/etc/xferproxy 040755 root:root config=0",
        "/etc/xferproxy/keys 040700 root:root config=0",
        "/var/lib/xferproxy 040755 root:root config=0",
        "/var/lib/xferproxy/balancer 042770 root:xferproxy config=0",
        "/var/log/xferproxy 042770 root:xferproxy config=0",
        "/var/log/xferproxy/root 042750 root:xferproxy config=0",
        "/var/cache/xferproxy 040755 root:root config=0",
        "/usr/share/doc/xferproxy 040755 root:root config=0",
      ]
    ) {
      assertIncludes(dump.join("\n"), line);
    }
    // noreplace: an edited config is kept (as .rpmnew for the new one).
    const flags = await must(["rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", RPM]);
    assertMatch(flags, /cn\s+\/etc\/xferproxy\/aspera\.conf/);
    assertMatch(flags, /l\s+\/usr\/share\/licenses\/xferproxy\/LICENSE/);
    assertEquals(
      await must(["rpm", "-qp", "--qf", "%{LICENSE}", RPM]),
      "Apache-2.0 AND MIT AND BSD-3-Clause AND Unlicense",
    );
    assertIncludes(await must(["rpm", "-qp", "--requires", RPM]), "(iptables or nftables)");
    assertMatch(await must(["rpm", "-qp", "--changelog", RPM]), new RegExp(`> - ${VERSION}-1\n- `));
    const scripts = await rpmScripts();
    assertIncludes(
      scripts.pre ?? "",
      "systemd-sysusers --replace=/usr/lib/sysusers.d/xferproxy.conf -",
    );
    assertIncludes(scripts.pre ?? "", "\ng xferproxy -\n");
    assertIncludes(scripts.pre ?? "", "groupadd --system xferproxy");
    assertIncludes(scripts.post ?? "", "visudo -cf /etc/sudoers.d/xferproxy");
    assertIncludes(scripts.post ?? "", "sysctl -q -p /usr/lib/sysctl.d/60-xferproxy.conf");
    assertMatch(scripts.post ?? "", /^xferproxy version >\/dev\/null$/m);
    assertIncludes(scripts.post ?? "", "systemctl --no-reload preset xferproxy-dnat.service");
    // Red Hat's rule: installing starts nothing (presets decide what is enabled).
    assertEquals(/start|enable --now|deb-systemd/.test(scripts.post ?? ""), false, scripts.post);
    assertIncludes(scripts.preun ?? "", "xferproxy dnat reap --all");
    assertIncludes(
      scripts.preun ?? "",
      "disable --now xferproxy-dnat.service xferproxy-forward.service",
    );
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

Deno.test({
  name: "the man page and completion in the packages are what today's modes say",
  ignore: !isRoot,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await must(["dpkg-deb", "-x", DEB, `${dir}/deb`]);
      await must([
        "sh",
        "-c",
        `mkdir ${dir}/rpm && cd ${dir}/rpm && rpm2cpio ${RPM} | cpio -idm --quiet`,
      ]);
      const date = /^\.TH XFERPROXY 1 "([\d-]+)"/.exec(
        await must(["sh", "-c", `zcat ${dir}/deb/usr/share/man/man1/xferproxy.1.gz`]),
      )?.[1];
      await must([
        `${ROOT}.tools/bin/deno`,
        "run",
        "--quiet",
        "--frozen",
        `--allow-write=${dir}`,
        `${ROOT}scripts/gen-mode-docs.ts`,
        dir,
        date ?? "missing",
      ]);
      for (const root of ["deb", "rpm"]) {
        assertEquals(
          await must(["sh", "-c", `zcat ${dir}/${root}/usr/share/man/man1/xferproxy.1.gz`]),
          await Deno.readTextFile(`${dir}/xferproxy.1`),
          `${root}: xferproxy.1 is stale: make dist`,
        );
        assertEquals(
          await Deno.readTextFile(`${dir}/${root}/usr/share/bash-completion/completions/xferproxy`),
          await Deno.readTextFile(`${dir}/xferproxy.bash`),
          `${root}: the completion is stale: make dist`,
        );
      }
      // man reads it without a warning.
      const man = await run([
        "sh",
        "-c",
        `MANWIDTH=80 man --warnings -l ${dir}/xferproxy.1 2>&1 >/dev/null`,
      ]);
      assertEquals([man.code, man.stdout], [0, ""]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "lintian and rpmlint find nothing (their overrides say why each tag does not apply)",
  ignore: !isRoot,
  async fn() {
    const rpmlint = await run(["rpmlint", "-c", `${ROOT}packaging/rpmlint.toml`, RPM]);
    assertMatch(rpmlint.stdout, /0 errors, 0 warnings/, rpmlint.stdout);
    assertEquals(rpmlint.code, 0, rpmlint.stdout);
    // lintian reads the whole 40 MB single file: a few minutes.
    const lintian = await run(["lintian", "--tag-display-limit", "0", DEB], { timeoutMs: 600_000 });
    const tags = lintian.stdout.split("\n").filter((l) => /^[EW]: /.test(l));
    assertEquals(tags, [], lintian.stdout + lintian.stderr);
    assertEquals(lintian.code, 0, lintian.stdout + lintian.stderr);
  },
});
