/**
 * `check system` findings through a fake CheckHost: the fixture trees' files
 * with modes set by the test (no root needed), and the live system's answers
 * (sysctl, tool versions, iptables-save, ps) scripted, which the e2e tests on
 * --root trees cannot reach.
 */
import { assertEquals, assertMatch } from "../_assert.ts";
import { checkSystem, declares, runSystemChecks, SYSTEM_CHECKS } from "../../src/check/system.ts";
import type { CheckHost, FileInfo, ReadOnlyQuery } from "../../src/check/host.ts";
import { parseConfigText } from "../../src/config/mod.ts";
import type { Finding } from "../../src/check/findings.ts";

const FIXTURES = new URL("../fixtures/check/", import.meta.url);
const NOW = 1_800_000_000_000;
const CLEAN_MODES: Record<string, number> = {
  "/etc/xferproxy/keys/id_ed25519": 0o640,
  "/home/bear/.ssh/id_ed25519": 0o600,
  "/home/bear/.ssh/authorized_keys": 0o600,
  "/usr/bin/ssh": 0o755,
  "/var/lib/xferproxy/balancer": 0o2770,
  "/var/log/xferproxy": 0o2770,
};

type Answer = { code: number; stdout: string; stderr: string } | undefined;

/** A fixture tree, root-owned, with `extra` files laid over it and scripted program answers. */
function fixtureHost(
  tree: "clean" | "dirty",
  options: {
    live?: boolean;
    extra?: Record<string, string>;
    run?: (query: ReadOnlyQuery) => Answer;
  } = {},
): CheckHost {
  const at = (path: string) => new URL(`${tree}${path}`, FIXTURES);
  const stat = (path: string): FileInfo | undefined => {
    const isDirectory = (() => {
      if (options.extra?.[path] !== undefined) return false;
      try {
        return Deno.statSync(at(path)).isDirectory;
      } catch {
        return undefined;
      }
    })();
    if (isDirectory === undefined) return undefined;
    return {
      uid: 0,
      gid: 0,
      isDirectory,
      mode: CLEAN_MODES[path] ?? (isDirectory ? 0o755 : 0o644),
    };
  };
  return {
    root: options.live ? "/" : "/mnt/image",
    readText(path) {
      const extra = options.extra?.[path];
      if (extra !== undefined) return Promise.resolve(extra);
      try {
        return Promise.resolve(Deno.readTextFileSync(at(path)));
      } catch {
        return Promise.resolve(undefined);
      }
    },
    stat: (path) => Promise.resolve(stat(path)),
    list(dir) {
      const extras = Object.keys(options.extra ?? {}).filter((p) =>
        p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes("/")
      ).map((p) => p.slice(dir.length + 1));
      try {
        const names = [...Deno.readDirSync(at(dir))].map((e) => e.name);
        return Promise.resolve([...new Set([...names, ...extras])]);
      } catch {
        return Promise.resolve(extras);
      }
    },
    run: (query) => Promise.resolve(options.live ? options.run?.(query) : undefined),
  };
}

/** The live answers of a healthy host. */
function healthy(query: ReadOnlyQuery): Answer {
  switch (query.kind) {
    case "ip_forward":
      return { code: 0, stdout: "1\n", stderr: "" };
    case "version":
      return { code: 0, stdout: `${query.program} v1.8.9\n`, stderr: "" };
    case "iptables_save":
      return { code: 0, stdout: "*nat\nCOMMIT\n", stderr: "" };
    case "proc_stat":
      return procStat(query.pids.filter((p) => RUNNING.has(p)));
  }
}

/** Processes running on the fake host (pid → start ticks). */
const RUNNING = new Map([[9, 100]]);

/** `head -v` of /proc/stat and the stat files of running pids, as check's query prints them. */
function procStat(pids: readonly number[]): Answer {
  const files = [
    "==> /proc/stat <==\ncpu  1 2 3\nbtime 1796000000\n",
    ...pids.map((p) =>
      `==> /proc/${p}/stat <==\n${p} (xferproxy) S 1 ${"0 ".repeat(17)}${RUNNING.get(p)} 0\n`
    ),
  ];
  return { code: 0, stdout: files.join("\n"), stderr: "" };
}

async function audit(
  host: CheckHost,
  executable = "/opt/xferproxy/bin/xferproxy",
): Promise<Finding[]> {
  const text = (await host.readText("/etc/xferproxy/aspera.conf")) as string;
  const config = parseConfigText(text, "/etc/xferproxy/aspera.conf").config;
  return await checkSystem(host, {
    ...(config ? { config } : {}),
    sshdConfigPath: "/etc/ssh/sshd_config",
    executable,
    now: NOW,
  });
}

const ids = (findings: Finding[], severity: string) =>
  [...new Set(findings.filter((f) => f.severity === severity).map((f) => f.id))].sort();

const HEARTBEAT = {
  "/var/lib/xferproxy/dnat/service.json": JSON.stringify({
    pid: 9,
    updated: NOW - 1000,
    socket: "/run/xferproxy/dnat.sock",
  }),
};

Deno.test("a clean live host: nothing to fix, the DNAT service seen running", async () => {
  const findings = await audit(
    fixtureHost("clean", { live: true, run: healthy, extra: HEARTBEAT }),
  );
  assertEquals([ids(findings, "error"), ids(findings, "warning")], [[], []]);
  const info = (id: string) => findings.find((f) => f.id === id)?.message;
  assertEquals(
    info("dnat.service"),
    "the DNAT service runs (pid 9); it decides and registers sessions through /run/xferproxy/dnat.sock, no sudo",
  );
  assertEquals(info("system.tool.iptables"), "iptables: iptables v1.8.9");
  assertEquals(info("dnat.rules"), "no session holds UDP forwarding");
});

/** A live audit where the DNAT service's heartbeat (pid 9, a second old) says `beat`. */
function auditLive(beat: Record<string, unknown>, files: Record<string, string> = {}) {
  return audit(fixtureHost("clean", {
    live: true,
    run: healthy,
    extra: {
      "/var/lib/xferproxy/dnat/service.json": JSON.stringify({
        pid: 9,
        updated: NOW - 1000,
        ...beat,
      }),
      ...files,
    },
  }));
}

Deno.test("a fresh heartbeat whose pid is gone (kill -9) is a service that does not run", async () => {
  const findings = await auditLive({ pid: 4711 });
  const service = findings.find((f) => f.id === "dnat.service");
  assertEquals(service?.severity, "warning");
  assertMatch(
    service?.message ?? "",
    /not running \(its pid 4711 is gone\): FASP sessions fall back to "sudo/,
  );
});

Deno.test("a service keeping its last good config says the file on disk is not in use", async () => {
  const findings = await auditLive({
    configError: 'line 3: <proxy_port> must be an integer 0-65535, got "x"',
  });
  const said = findings.find((f) => f.id === "dnat.config");
  assertEquals(said?.severity, "error");
  assertMatch(said?.message ?? "", /keeps its last good config: .*line 3: <proxy_port>/);
});

Deno.test("a drained node and a service whose netfilter does not answer are said, each once", async () => {
  const findings = await auditLive(
    { health: "netfilter: add failed: iptables: No chain/target/match by that name." },
    {
      "/var/lib/xferproxy/dnat/drain.json": JSON.stringify({
        since: Date.UTC(2026, 11, 5, 6),
        reason: "kernel update",
      }),
    },
  );
  const drained = findings.filter((f) => f.id === "dnat.drained");
  assertEquals(drained.map((f) => [f.severity, f.message]), [[
    "warning",
    "this node is drained since 2026-12-05T06:00:00.000Z (kernel update): new reverse sessions are refused, /healthz answers 503",
  ]]);
  const health = findings.filter((f) => f.id === "dnat.health");
  assertEquals(health.length, 1);
  assertMatch(health[0]!.message, /unhealthy \(netfilter: add failed: iptables: No chain/);
});

Deno.test("log lines the service could not write are a warning; a status port it cannot hold an error", async () => {
  const findings = await auditLive({
    health: "ok",
    log_lines_lost: 12,
    status_error: "Address already in use (os error 98)",
  });
  const lost = findings.find((f) => f.id === "logs.lost");
  assertEquals(lost?.severity, "warning");
  assertMatch(lost?.message ?? "", /could not write 12 log line\(s\) since it started/);
  const status = findings.find((f) => f.id === "dnat.status");
  assertEquals(status?.severity, "error");
  assertMatch(
    status?.message ?? "",
    /cannot serve \/metrics and \/healthz \(Address already in use/,
  );
});

Deno.test("a healthy, undrained service has none of these findings", async () => {
  const findings = await auditLive({ health: "ok", log_lines_lost: 0 });
  const ids = ["dnat.drained", "dnat.health", "dnat.status", "logs.lost"];
  assertEquals(findings.filter((f) => ids.includes(f.id)), []);
});

Deno.test("live only: a stale heartbeat, a missing tool, forwarding off, an orphaned rule", async () => {
  const owner = "xferproxy:3a9fd819-59c3-42bc-b0a2-d26304a1eb84:4242:1800000000000";
  const findings = await audit(fixtureHost("clean", {
    live: true,
    extra: {
      "/var/lib/xferproxy/dnat/service.json": JSON.stringify({ pid: 9, updated: NOW - 600_000 }),
    },
    run(query) {
      if (query.kind === "version" && query.program === "conntrack") return undefined;
      if (query.kind === "ip_forward") return { code: 0, stdout: "0\n", stderr: "" };
      if (query.kind === "iptables_save") {
        return {
          code: 0,
          stdout: `-A XFERPROXY-PRE -s 198.18.1.2/32 -m comment --comment "${owner}" -j DNAT\n`,
          stderr: "",
        };
      }
      return healthy(query);
    },
  }));
  assertEquals(ids(findings, "error"), ["system.ip_forward", "system.tool.conntrack"]);
  assertEquals(ids(findings, "warning"), ["dnat.orphaned", "dnat.service"]);
  const said = (id: string) => findings.find((f) => f.id === id);
  assertEquals(
    said("system.tool.conntrack")?.fix,
    "apt-get install conntrack (Debian) or yum install conntrack-tools (Red Hat)",
  );
  assertMatch(
    said("dnat.orphaned")?.message ?? "",
    /1 session\(s\) whose owner has ended .*3a9fd819 pid 4242/,
  );
});

Deno.test("forward HTTPS without a certificate needs openssl to make one", async (t) => {
  const conf = (await fixtureHost("clean").readText("/etc/xferproxy/aspera.conf")) as string;
  const https = conf.replace(
    "<server>",
    "<server><enable_https>true</enable_https><proxy><enabled>true</enabled></proxy>",
  );
  const errors = async (extra: Record<string, string>) =>
    ids(
      await audit(
        fixtureHost("clean", { extra: { "/etc/xferproxy/aspera.conf": https, ...extra } }),
      ),
      "error",
    );
  await t.step("missing: an error saying what to install or set", async () => {
    assertEquals(await errors({}), ["forward.openssl"]);
  });
  await t.step("installed: nothing to say", async () => {
    assertEquals(await errors({ "/usr/bin/openssl": "" }), []);
  });
  await t.step("configured files: openssl is not needed", async () => {
    const own = https.replace(
      "<enabled>true</enabled></proxy>",
      "<enabled>true</enabled><cert_file>/c</cert_file><key_file>/k</key_file></proxy>",
    );
    assertEquals(await errors({ "/etc/xferproxy/aspera.conf": own }), []);
  });
});

Deno.test("the dirty tree under --root: the same errors the e2e test sees, no program run", async () => {
  let ran = 0;
  const findings = await audit(fixtureHost("dirty", { run: () => void ran++ }));
  assertEquals(ran, 0);
  for (const id of ["handoff.ssh", "sudoers.requiretty", "system.ip_forward", "system.selinux"]) {
    assertEquals(ids(findings, "error").includes(id), true, id);
  }
  for (const f of findings.filter((f) => f.severity !== "info")) assertMatch(f.fix, /\S/, f.id);
});

Deno.test("sudoers: only a rule sudo reads, for the path sessions run and the proxy group, counts (issue 19, item 13)", async (t) => {
  const sudoers = async (extra: Record<string, string>) => {
    const findings = await audit(fixtureHost("clean", { extra }));
    return findings.filter((f) => f.id.startsWith("sudoers."));
  };
  const HELPER = "/usr/local/bin/xferproxy dnat *";
  await t.step(
    "the fixture's rule: the path sshd's ForceCommand runs, group xferproxy",
    async () => {
      const [found] = await sudoers({});
      assertEquals(found?.severity, "info");
      assertMatch(
        found?.message ?? "",
        /lets %xferproxy run "\/usr\/local\/bin\/xferproxy dnat \*"/,
      );
    },
  );
  const attacks: Array<[string, Record<string, string>, RegExp]> = [
    [
      "any path that ends in xferproxy",
      {
        "/etc/sudoers.d/xferproxy": "%xferproxy ALL=(root) NOPASSWD: /home/bear/xferproxy dnat *\n",
      },
      /does not count: it names \/home\/bear\/xferproxy, sessions run \/usr\/local\/bin\/xferproxy/,
    ],
    [
      "another group",
      { "/etc/sudoers.d/xferproxy": `%users ALL=(root) NOPASSWD: ${HELPER}\n` },
      /does not count: it is for %users, not %xferproxy/,
    ],
    [
      "a file sudo skips",
      {
        "/etc/sudoers.d/xferproxy": "# moved aside\n",
        "/etc/sudoers.d/xferproxy.invalid": `%xferproxy ALL=(root) NOPASSWD: ${HELPER}\n`,
      },
      /no sudoers rule that sudo reads lets %xferproxy run/,
    ],
    [
      "a drop-in sudoers does not include",
      { "/etc/sudoers": "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n" },
      /no sudoers rule that sudo reads lets %xferproxy run/,
    ],
  ];
  for (const [name, extra, message] of attacks) {
    await t.step(name, async () => {
      const found = await sudoers(extra);
      const dnat = found.find((f) => f.id === "sudoers.dnat");
      assertEquals(dnat?.severity, "error");
      assertMatch(dnat?.message ?? "", message);
      assertEquals(
        dnat?.fix,
        `add "%xferproxy ALL=(root) NOPASSWD: ${HELPER}" with visudo -f /etc/sudoers.d/xferproxy`,
      );
    });
  }
  await t.step("the file sudo skips is named", async () => {
    const found = await sudoers(attacks[2]?.[1] ?? {});
    assertEquals(
      found.find((f) => f.id === "sudoers.skipped")?.message,
      'sudo does not read /etc/sudoers.d/xferproxy.invalid: it skips names with a dot or ending in "~" in an included directory',
    );
  });
  await t.step("without a ForceCommand path, this executable's", async () => {
    const sshd = "Match Group xferproxy\n  ForceCommand xferproxy reverse\n";
    const findings = await audit(
      fixtureHost("clean", { extra: { "/etc/ssh/sshd_config.d/xferproxy.conf": sshd } }),
      "/usr/bin/xferproxy",
    );
    assertMatch(
      findings.find((f) => f.id === "sudoers.dnat")?.message ?? "",
      /it names \/usr\/local\/bin\/xferproxy, sessions run \/usr\/bin\/xferproxy/,
    );
  });
});

Deno.test("the tool and library looked for are the ones the configured backend declares", async () => {
  const conf = (await fixtureHost("clean").readText("/etc/xferproxy/aspera.conf")) as string;
  const nft = conf.replace("<server>", "<server><dnat_backend>nftables</dnat_backend>");
  const asked: string[] = [];
  const findings = await audit(fixtureHost("clean", {
    live: true,
    run: (query) => {
      if (query.kind === "version") asked.push(query.program);
      return healthy(query);
    },
    extra: { "/etc/xferproxy/aspera.conf": nft, ...HEARTBEAT },
  }));
  assertEquals(asked, ["nft", "conntrack"]);
  const libnftables = findings.find((f) => f.id === "system.libnftables");
  assertEquals(libnftables?.severity, "warning");
  assertMatch(libnftables?.message ?? "", /libnftables is not at \/usr\/lib/);
  asked.length = 0;
  const plain = await audit(fixtureHost("clean", {
    live: true,
    run: (query) => {
      if (query.kind === "version") asked.push(query.program);
      return healthy(query);
    },
    extra: HEARTBEAT,
  }));
  assertEquals(asked, ["iptables", "conntrack"]);
  assertEquals(plain.some((f) => f.id === "system.libnftables"), false);
});

Deno.test("a removal netfilter refused is reported while it is being retried", async () => {
  const pending = [
    "3a9fd819-59c3-42bc-b0a2-d26304a1eb84",
    9,
    1_800_000_000_000,
    0,
    0,
    NOW - 60_000,
    "alice",
    "198.19.1.1:22",
    0,
    [0, "198.18.30.2", 0, "198.18.30.1", 5000, 1, "198.19.1.1", 33001, 22],
    NOW - 30_000,
  ];
  const registry = `{"version":3,"entries":[${JSON.stringify(pending)}]}`;
  const findings = await audit(fixtureHost("clean", {
    live: true,
    run: healthy,
    extra: { ...HEARTBEAT, "/var/lib/xferproxy/dnat/sessions.json": registry },
  }));
  const said = findings.find((f) => f.id === "dnat.removing");
  assertEquals(said?.severity, "warning");
  assertMatch(said?.message ?? "", /1 session\(s\) .* being retried \(3a9fd819 for 30 s\)/);
});

Deno.test("each named system check reports only the finding ids it declares", async () => {
  const conf = (await fixtureHost("clean").readText("/etc/xferproxy/aspera.conf")) as string;
  // Forward HTTPS with no certificate on nftables: openssl and libnftables are looked for.
  const nftHttps = conf.replace(
    "<server>",
    "<server><dnat_backend>nftables</dnat_backend><enable_https>true</enable_https>" +
      "<proxy><enabled>true</enabled></proxy>",
  );
  const hosts = [
    fixtureHost("clean", { extra: { "/etc/xferproxy/aspera.conf": nftHttps } }),
    fixtureHost("clean", { live: true, run: healthy, extra: HEARTBEAT }),
    fixtureHost("clean"),
    fixtureHost("dirty"),
    fixtureHost("dirty", { live: true, run: () => ({ code: 1, stdout: "", stderr: "no" }) }),
  ];
  const seen = new Set<string>();
  for (const host of hosts) {
    const text = (await host.readText("/etc/xferproxy/aspera.conf")) as string;
    const config = parseConfigText(text, "/etc/xferproxy/aspera.conf").config;
    const results = await runSystemChecks(host, {
      ...(config ? { config } : {}),
      sshdConfigPath: "/etc/ssh/sshd_config",
      executable: "/opt/xferproxy/bin/xferproxy",
      now: NOW,
    });
    for (const { check, findings } of results) {
      const undeclared = findings.map((f) => f.id).filter((id) => !declares(check, id));
      assertEquals(undeclared, [], `check "${check.name}" reports ids it does not declare`);
      if (findings.length > 0) seen.add(check.name);
    }
  }
  // The fixtures reach most checks: a table entry that never runs would go unnoticed.
  assertEquals(SYSTEM_CHECKS.filter((c) => !seen.has(c.name)).map((c) => c.name), []);
  assertEquals(new Set(SYSTEM_CHECKS.map((c) => c.name)).size, SYSTEM_CHECKS.length);
});
