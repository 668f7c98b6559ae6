/**
 * The command line of the built binary: help, version, usage errors, and
 * `check config` / `check defaults` on real files.
 */
import { assertEquals, assertIncludes, assertMatch, assertOk } from "../_assert.ts";
import { ROOT, runXferproxy, tempDir } from "../testbed/paths.ts";

const TWO_RULES = `${ROOT}tests/fixtures/seeds/two_rules.conf`;

Deno.test("xferproxy --help and help <mode> describe every mode", async () => {
  const main = await runXferproxy(["--help"]);
  assertEquals(main.code, 0);
  for (const mode of ["reverse", "forward", "check", "dnat", "version", "help"]) {
    assertIncludes(main.stdout, `  ${mode} `);
  }
  for (const mode of ["reverse", "forward", "check", "dnat"]) {
    const help = await runXferproxy([mode, "--help"]);
    assertEquals(help.code, 0, `${mode} --help`);
    assertIncludes(help.stdout, `Usage: xferproxy ${mode}`);
    assertEquals(help.stdout, (await runXferproxy(["help", mode])).stdout);
  }
});

Deno.test("xferproxy version prints the version from deno.json", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const result = await runXferproxy(["version"]);
  assertEquals(result.code, 0);
  assertMatch(
    result.stdout,
    new RegExp(`^xferproxy ${denoJson.version.replaceAll(".", "\\.")} \\(deno 2\\.9\\.6, v8 `),
  );
});

Deno.test("usage errors are one line naming the culprit, with a hint, exit 2", async (t) => {
  const cases: Array<[string[], string]> = [
    [
      ["teleport"],
      `xferproxy: unknown mode "teleport"; expected one of: reverse, forward, check, dnat, version, help (Try "xferproxy --help".)`,
    ],
    [
      ["check", "--frobnicate"],
      `xferproxy: unknown option "--frobnicate" for check (Try "xferproxy check --help".)`,
    ],
    [
      ["reverse", "--nope"],
      `xferproxy: unknown option "--nope" for reverse (Try "xferproxy reverse --help".)`,
    ],
  ];
  for (const [args, line] of cases) {
    await t.step(args.join(" "), async () => {
      const result = await runXferproxy(args);
      assertEquals([result.code, result.stdout, result.stderr], [2, "", line + "\n"]);
    });
  }
});

Deno.test("reverse outside sshd says what is missing, on stderr only, exit 255", async () => {
  const result = await runXferproxy(["reverse", "--config", TWO_RULES], {
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
  });
  assertEquals([result.code, result.stdout], [255, ""]);
  assertEquals(
    result.stderr,
    "xferproxy: SSH_CONNECTION is not set: xferproxy reverse must be run by sshd\n",
  );
});

Deno.test("check config prints OK for a valid file, from --config or XFERPROXY_CONFIG", async () => {
  const viaFlag = await runXferproxy(["check", "config", "--config", TWO_RULES]);
  assertEquals(viaFlag.code, 0);
  assertEquals(
    viaFlag.stdout,
    `OK: "${TWO_RULES}" is valid (reverse proxy on, 2 rules; forward proxy off)\n`,
  );
  const viaEnv = await runXferproxy(["check", "config"], { env: { XFERPROXY_CONFIG: TWO_RULES } });
  assertEquals(viaEnv.stdout, viaFlag.stdout);
  const flagWins = await runXferproxy(["check", "config", "--config", TWO_RULES], {
    env: { XFERPROXY_CONFIG: "/nonexistent" },
  });
  assertEquals(flagWins.code, 0);
});

Deno.test("check config lists every problem and exits 1", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir.path}/bad.conf`;
    await Deno.writeTextFile(
      path,
      `<server>\n<http_port>abc</http_port>\n<colour/>\n<rproxy>\n<enabled>maybe</enabled>\n</rproxy>\n</server>\n`,
    );
    const result = await runXferproxy(["check", "config", "--config", path]);
    assertEquals(result.code, 1);
    assertEquals(result.stdout.split("\n"), [
      `Cannot load config "${path}": line 2, column 1: <http_port> must be an integer 1-65535, got "abc"`,
      `Warning: config "${path}": line 3, column 1: unknown tag <colour> in <server> (ignored)`,
      `Cannot load config "${path}": line 5, column 1: <enabled> must be true or false, got "maybe"`,
      `FAILED: "${path}" has 2 errors and 1 warning`,
      "",
    ]);
  } finally {
    await dir.remove();
  }
});

Deno.test("check config warns when only host_domain, which the client sends, tells partners apart", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir.path}/partners.conf`;
    const rule = (name: string) =>
      `<rule host_domain="${name}.example"><host>198.18.2.2</host><squash_user>${name}</squash_user><keyfile>/k</keyfile></rule>`;
    await Deno.writeTextFile(
      path,
      `<server>\n<rproxy>\n<enabled>true</enabled>\n<rules>\n${rule("acme")}\n${
        rule("globex")
      }\n</rules>\n</rproxy>\n</server>\n`,
    );
    const result = await runXferproxy(["check", "config", "--json", "--config", path]);
    assertEquals(result.code, 0, result.stderr);
    const findings = JSON.parse(result.stdout).findings as Array<
      { id: string; severity: string; message: string; fix: string }
    >;
    assertEquals(findings.map((f) => [f.id, f.severity]), [
      ["config.host_domain", "warning"],
      ["config.valid", "info"],
    ]);
    assertIncludes(findings[0]?.message ?? "", "line 6, column 1: <rule> 2 and <rule> 1 (line 5)");
    assertIncludes(findings[0]?.fix ?? "", "never separate partners by host_domain");
  } finally {
    await dir.remove();
  }
});

Deno.test("check config explains a missing file, a directory and malformed XML", async () => {
  const dir = await tempDir();
  try {
    const missing = await runXferproxy(["check", "config", "--config", `${dir.path}/none.conf`]);
    assertEquals(missing.code, 1);
    assertIncludes(missing.stdout, `Cannot load config "${dir.path}/none.conf": file not found`);
    const directory = await runXferproxy(["check", "config", "--config", dir.path]);
    assertEquals(directory.code, 1);
    assertIncludes(
      directory.stdout,
      `Cannot load config "${dir.path}": is a directory, not a file`,
    );
    await Deno.writeTextFile(`${dir.path}/broken.conf`, `<server>\n  <rproxy>\n</server>\n`);
    const broken = await runXferproxy(["check", "config", "--config", `${dir.path}/broken.conf`]);
    assertEquals(broken.code, 1);
    assertIncludes(
      broken.stdout,
      `"${dir.path}/broken.conf": line 3, column 1: malformed XML: Expected closing tag 'rproxy'`,
    );
  } finally {
    await dir.remove();
  }
});

Deno.test("hostile config files get one line each, never a stack trace, in every mode that reads them", async () => {
  const dir = await tempDir();
  try {
    const files: Array<[string, Uint8Array | string, string]> = [
      [
        "entities.conf",
        `<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/shadow">]>\n<server>&x;</server>\n`,
        "line 1, column 1: malformed XML: DOCTYPE and ENTITY declarations are not accepted in a config file",
      ],
      [
        "deep.conf",
        "<server>" + "<a>".repeat(50_000) + "</a>".repeat(50_000) + "</server>",
        "line 1, column 102: malformed XML: elements nested deeper than 32 levels",
      ],
      [
        "latin1.conf",
        new Uint8Array([
          ...new TextEncoder().encode("<server>\n<!-- caf"),
          0xe9,
          0x20,
          0x2d,
          0x2d,
          0x3e,
          0x3c,
          0x2f,
          0x73,
          0x65,
          0x72,
          0x76,
          0x65,
          0x72,
          0x3e,
        ]),
        "line 2, column 9: invalid UTF-8 (byte 0xe9); save the file as UTF-8",
      ],
    ];
    for (const [name, content, line] of files) {
      const path = `${dir.path}/${name}`;
      if (typeof content === "string") await Deno.writeTextFile(path, content);
      else await Deno.writeFile(path, content);
      for (
        const argv of [["check", "config"], ["check", "system"], ["forward", "serve"], [
          "dnat",
          "list",
        ]]
      ) {
        const ran = await runXferproxy([...argv, "--config", path]);
        const said = ran.stdout + ran.stderr;
        assertEquals([argv.join(" "), ran.code !== 0, /\n\s+at /.test(said)], [
          argv.join(" "),
          true,
          false,
        ]);
        if (argv[1] === "config") assertIncludes(said, `"${path}": ${line}`);
      }
    }
  } finally {
    await dir.remove();
  }
});

Deno.test("check config explains an unreadable file (run as a non-root user)", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir.path}/secret.conf`;
    await Deno.writeTextFile(path, "<server/>");
    await Deno.chmod(path, 0o600);
    await Deno.chmod(dir.path, 0o755);
    const result = await new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        `${ROOT}dist/xferproxy`,
        "check",
        "config",
        "--config",
        path,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { HOME: "/tmp" },
    }).output();
    const stdout = new TextDecoder().decode(result.stdout);
    assertEquals(result.code, 1, new TextDecoder().decode(result.stderr));
    assertEquals(
      stdout,
      `Cannot load config "${path}": permission denied (check the file's owner and mode)\n`,
    );
  } finally {
    await dir.remove();
  }
});

Deno.test("check defaults prints the option spec, which check config accepts", async () => {
  const spec = await runXferproxy(["check", "defaults"]);
  assertEquals(spec.code, 0);
  assertMatch(spec.stdout, /^<!-- Server Options Spec/);
  for (
    const tag of [
      "enable_http",
      "port_range_low",
      "session_timeout",
      "src_port_filtering",
      "squash_user",
      "keyfile",
    ]
  ) {
    assertIncludes(spec.stdout, `<!-- ${tag}: `);
  }
  const dir = await tempDir();
  try {
    await Deno.writeTextFile(`${dir.path}/spec.conf`, spec.stdout);
    const check = await runXferproxy(["check", "config", "--config", `${dir.path}/spec.conf`]);
    assertEquals(check.code, 0, check.stdout);
    assertOk(
      check.stdout.endsWith(`is valid (reverse proxy off; forward proxy off; 1 warning)\n`),
      check.stdout,
    );
  } finally {
    await dir.remove();
  }
});
