/**
 * check system / users / all on fixture trees (--root), clean and dirty: every
 * finding a file tree can show, with modes and owners set as an admin would.
 */
import { assertEquals, assertIncludes, assertMatch } from "../_assert.ts";
import { must, run } from "../testbed/exec.ts";
import { BINARY, ROOT } from "../testbed/paths.ts";

const isRoot = Deno.uid() === 0;

interface Report {
  ok: boolean;
  findings: Array<{ id: string; severity: string; message: string; fix: string }>;
}

/** Copies a fixture tree and applies the modes git cannot keep. */
async function tree(name: "clean" | "dirty"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `xferproxy-check-${name}-` });
  await must(["cp", "-a", `${ROOT}tests/fixtures/check/${name}/.`, dir]);
  await must(["chown", "-R", "root:root", dir]);
  const modes: Record<string, number> = name === "clean"
    ? {
      "etc/xferproxy/keys/id_ed25519": 0o640,
      "home/bear/.ssh/id_ed25519": 0o600,
      "home/bear/.ssh/authorized_keys": 0o600,
      "usr/bin/ssh": 0o755,
      "var/lib/xferproxy": 0o755,
      "var/lib/xferproxy/balancer": 0o2770,
      "var/log/xferproxy": 0o2770,
    }
    : {
      "home/bear/.ssh/id_ed25519": 0o644,
      "home/bear/.ssh/authorized_keys": 0o666,
      "var/lib/xferproxy": 0o777,
    };
  for (const [path, mode] of Object.entries(modes)) await Deno.chmod(`${dir}/${path}`, mode);
  return dir;
}

async function check(
  dir: string,
  ...args: string[]
): Promise<{ code: number; report: Report; stdout: string }> {
  const result = await run([
    BINARY,
    "check",
    ...args,
    "--root",
    dir,
    "--config",
    "/etc/xferproxy/aspera.conf",
    "--json",
  ]);
  return { code: result.code, report: JSON.parse(result.stdout), stdout: result.stdout };
}

function ids(report: Report, severity: string): string[] {
  return [...new Set(report.findings.filter((f) => f.severity === severity).map((f) => f.id))]
    .sort();
}

Deno.test({
  name: "check on a clean tree: no error, no warning, exit 0",
  ignore: !isRoot,
  async fn() {
    const dir = await tree("clean");
    try {
      const { code, report } = await check(dir);
      assertEquals(ids(report, "error"), []);
      assertEquals(ids(report, "warning"), []);
      assertEquals([code, report.ok], [0, true]);
      assertEquals(ids(report, "info").includes("config.valid"), true);
      const text = await run([BINARY, "check", "users", "--root", dir]);
      assertEquals(text.code, 0);
      assertIncludes(
        text.stdout,
        "Users with full access: 2 (not considered insecure)\nProxy users: 1\nInsecure users: 0\n",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "check on a dirty tree: every finding, each with a fix, exit 1",
  ignore: !isRoot,
  async fn() {
    const dir = await tree("dirty");
    try {
      const { code, report } = await check(dir);
      assertEquals([code, report.ok], [1, false]);
      assertEquals(ids(report, "error"), [
        "dirs.missing",
        "dirs.state",
        "handoff.ssh",
        "keyfile.missing",
        "keyfile.mode",
        "keyfile.unusable",
        "known_hosts.missing",
        "sshd.accept_env",
        "sshd.forwarding",
        "sudoers.dnat",
        "sudoers.raw_netfilter",
        "sudoers.requiretty",
        "system.ip_forward",
        "system.selinux",
        "system.tool.conntrack",
        "system.tool.iptables",
        "users.forwarding_allowed",
        "users.keyfile_readable_by_others",
        "users.not_covered_by_ForceCommand",
        "users.writable_authorized_keys",
      ]);
      assertEquals(ids(report, "warning"), [
        "dirs.balancer",
        "sshd.dsa_keys",
        "sshd.password_auth",
        "sshd.port",
        "sshd.root_login",
        "system.hosts_localhost",
      ]);
      for (const f of report.findings.filter((f) => f.severity !== "info")) {
        assertMatch(f.fix, /\S/, `${f.id} has no fix`);
      }
      const said = (id: string) => report.findings.find((f) => f.id === id)?.message;
      assertEquals(
        said("keyfile.unusable"),
        'Keyfile "/home/bear/.ssh/id_ed25519" is a DSA key, which OpenSSH refuses since 7.0: make an ed25519 key (ssh-keygen -t ed25519) and authorize it on the internal server (rule 2)',
      );
      assertEquals(
        said("sudoers.requiretty"),
        'sudoers says "Defaults requiretty": sessions call sudo without a tty (scp, sftp, ascp), so they get no UDP forwarding',
      );
      assertEquals(
        said("sshd.dsa_keys"),
        "proxy users with DSA keys, which sshd refuses since OpenSSH 7.0: bear (/home/bear/.ssh/authorized_keys)",
      );
      const users = await run([
        BINARY,
        "check",
        "users",
        "--root",
        dir,
        "--config",
        "/etc/xferproxy/aspera.conf",
      ]);
      assertEquals(users.code, 1);
      assertIncludes(
        users.stdout,
        [
          "Users with full access: 1 (not considered insecure)",
          "Proxy users: 2",
          "Insecure users: 2",
          " - not covered by ForceCommand: 1",
          " - forwarding allowed: 1",
          " - writable authorized_keys: 1",
          " - keyfile readable by others: 1",
        ].join("\n"),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "check without a ForceCommand block or known_hosts file, and with a broken config",
  ignore: !isRoot,
  async fn() {
    const dir = await tree("clean");
    try {
      await Deno.remove(`${dir}/etc/ssh/sshd_config.d/xferproxy.conf`);
      await Deno.remove(`${dir}/etc/xferproxy/known_hosts`);
      const { report } = await check(dir, "system");
      // No ForceCommand names the path sessions run, so sudoers must name this executable
      // (dist/xferproxy), not the tree's /usr/local/bin/xferproxy.
      assertEquals(ids(report, "error"), [
        "known_hosts.file",
        "sshd.force_command",
        "sudoers.dnat",
      ]);
      assertMatch(
        report.findings.find((f) => f.id === "sudoers.dnat")?.message ?? "",
        new RegExp(`it names /usr/local/bin/xferproxy, sessions run ${BINARY}`),
      );
      await Deno.writeTextFile(
        `${dir}/etc/xferproxy/aspera.conf`,
        "<server><http_port>x</http_port></server>",
      );
      const broken = await check(dir, "config");
      assertEquals(ids(broken.report, "error"), ["config.http_port"]);
      await Deno.remove(`${dir}/etc/ssh/sshd_config`);
      assertEquals(ids((await check(dir, "system")).report, "error").includes("sshd.config"), true);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "check with the nftables backend looks for nft and for libnftables",
  ignore: !isRoot,
  async fn() {
    const dir = await tree("clean");
    try {
      const conf = `${dir}/etc/xferproxy/aspera.conf`;
      await Deno.writeTextFile(
        conf,
        (await Deno.readTextFile(conf)).replace(
          "<server>",
          "<server><dnat_backend>nftables</dnat_backend>",
        ),
      );
      const without = (await check(dir, "system")).report;
      assertEquals(ids(without, "error"), ["system.tool.nft"]);
      assertEquals(ids(without, "warning"), ["system.libnftables"]);
      await Deno.writeTextFile(`${dir}/usr/sbin/nft`, "");
      await Deno.mkdir(`${dir}/usr/lib64`);
      await Deno.writeTextFile(`${dir}/usr/lib64/libnftables.so.1`, "");
      const found = (await check(dir, "system")).report;
      assertEquals([ids(found, "error"), ids(found, "warning")], [[], []]);
      assertEquals(
        found.findings.find((f) => f.id === "system.libnftables")?.message,
        "libnftables: /usr/lib64/libnftables.so.1 (changes made in-process)",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("check --root must be absolute, and check holds no network or write permission", async () => {
  const relative = await run([BINARY, "check", "system", "--root", "relative"]);
  assertEquals([relative.code, relative.stderr], [
    2,
    `xferproxy: --root must be an absolute path, got "relative" (Try "xferproxy check --help".)\n`,
  ]);
});
