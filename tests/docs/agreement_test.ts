/**
 * The docs, help texts, hints and shipped files agree with the one place each fact comes from:
 * install paths and packages from src/process/packages.ts, defaults from the option spec, the
 * test hosts' packages from scripts/install-system-deps.sh, the sshd block and the forward unit
 * from packaging/. docs/configuration.md's option tables are held against the spec in
 * tests/config/spec_test.ts.
 */
import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import {
  COPIED_PATH,
  PACKAGED_PATH,
  packageOf,
  SBIN_DIRECTORIES,
  SBIN_PROGRAMS,
} from "../../src/process/packages.ts";
import {
  DEFAULT_CONFIG_PATH,
  FAULTY_SECONDS,
  PROXY,
  RPROXY,
  RULE,
  SERVER,
} from "../../src/config/spec.ts";
import type { OptionSpec } from "../../src/config/spec.ts";
import { checkMode } from "../../src/check/command.ts";
import { dnatMode } from "../../src/dnat/command.ts";
import { forwardMode } from "../../src/forward/command.ts";
import { reverseMode } from "../../src/reverse/command.ts";
import { checkSystem } from "../../src/check/system.ts";
import type { CheckHost } from "../../src/check/host.ts";
import { parseSshdConfig } from "../../src/check/sshd_config.ts";

function read(path: string): string {
  return Deno.readTextFileSync(new URL(`../../${path}`, import.meta.url));
}

const DOCS: ReadonlyArray<[string, string]> = [
  "README.md",
  ...[...Deno.readDirSync(new URL("../../docs/", import.meta.url))]
    .filter((e) => e.name.endsWith(".md")).map((e) => `docs/${e.name}`).sort(),
].map((path) => [path, read(path)]);

const HELP: ReadonlyArray<[string, string]> = [checkMode, dnatMode, forwardMode, reverseMode]
  .map((mode) => [`xferproxy ${mode.name} --help`, mode.usage]);

/** The fixes `check system` gives on a host where nothing is set up. */
async function systemHints(): Promise<string> {
  const empty: CheckHost = {
    root: "/mnt/image",
    readText: () => Promise.resolve(undefined),
    stat: () => Promise.resolve(undefined),
    list: () => Promise.resolve([]),
    run: () => Promise.resolve(undefined),
  };
  const findings = await checkSystem(empty, {
    sshdConfigPath: "/etc/ssh/sshd_config",
    now: 0,
    executable: PACKAGED_PATH,
  });
  return findings.map((f) => f.fix ?? "").join("\n\n");
}

/** A text's paragraphs and fenced code blocks, each as one string. */
function passages(text: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  let fenced = false;
  const flush = () => {
    if (current.length > 0) out.push(current.join("\n"));
    current = [];
  };
  for (const line of text.split("\n")) {
    if (line.trimStart().startsWith("```")) {
      if (!fenced) flush();
      current.push(line);
      if (fenced) flush();
      fenced = !fenced;
    } else if (!fenced && line.trim() === "") flush();
    else current.push(line);
  }
  flush();
  return out;
}

const BINARY = /(?:\/[\w.-]+)*\/s?bin\/xferproxy(?![\w.-])/g;
/** A line that tells sudo, systemd or sshd where the executable is. */
const NAMES_BINARY = /(NOPASSWD:|ExecStart=|ForceCommand)\s*(\/\S*xferproxy)\b/;

Deno.test("the packages install the executable where packages.ts says, and run it from there", () => {
  const build = read("scripts/build-packages.sh");
  assertIncludes(build, `"$root/dist/xferproxy" "$tree${PACKAGED_PATH}"`);
  assertIncludes(build, `%attr(0755,root,root) ${PACKAGED_PATH}\n`);
  const shipped = [
    "packaging/sudoers",
    "packaging/systemd/xferproxy-dnat.service",
    "packaging/systemd/xferproxy-forward.service",
    "packaging/sshd_config.example",
  ];
  for (const path of shipped) {
    const lines = read(path).split("\n").filter((l) => !l.trimStart().startsWith("#")).join("\n");
    const paths = lines.match(BINARY) ?? [];
    assertOk(paths.length > 0, `${path} names no path of the executable`);
    assertEquals(new Set(paths), new Set([PACKAGED_PATH]), path);
  }
  assertIncludes(read("docs/install.md"), `install -m 755 xferproxy ${COPIED_PATH}\n`);
  assertIncludes(read("docs/install.md"), `| \`${PACKAGED_PATH}\``);
});

Deno.test("docs, help texts and hints give the package's path and the hand-installed one, and say which", async () => {
  const texts: Array<[string, string]> = [...DOCS, ...HELP];
  // check system's fix names the very path this host's ForceCommand runs (here: the package's),
  // so it needs no "which one" beside it.
  const hints = await systemHints();
  assertEquals(new Set(hints.match(BINARY) ?? []), new Set([PACKAGED_PATH]));
  let lines = 0;
  for (const [name, text] of texts) {
    for (const path of text.match(BINARY) ?? []) {
      assertOk(
        path === PACKAGED_PATH || path === COPIED_PATH,
        `${name} names ${path}: the package installs ${PACKAGED_PATH}, docs/install.md puts the single file at ${COPIED_PATH}`,
      );
    }
    const all = passages(text);
    for (const [i, passage] of all.entries()) {
      for (const line of passage.split("\n")) {
        const named = NAMES_BINARY.exec(line)?.[2];
        if (!named) continue;
        lines++;
        const other = named === PACKAGED_PATH ? COPIED_PATH : PACKAGED_PATH;
        // Said in the line's own paragraph or code block, or in the paragraph that leads into it.
        assertIncludes(
          `${all[i - 1] ?? ""}\n${passage}`,
          other,
          `${name}: "${line.trim()}" does not say that ${other} applies to the ${
            named === PACKAGED_PATH ? "single file installed by hand" : "package"
          }`,
        );
      }
    }
  }
  // Sudoers, unit and ForceCommand lines in reverse.md, dnat.md, forward-api.md, configuration.md
  // and dnat's help: the scan found them.
  assertOk(lines >= 6, `only ${lines} sudoers, ExecStart or ForceCommand lines found`);
});

Deno.test("reverse.md's sshd block is the shipped sshd_config example", () => {
  const doc = read("docs/reverse.md");
  const block = passages(doc).find((p) => p.includes("ForceCommand") && p.startsWith("   ```"));
  assertOk(block, "docs/reverse.md has no sshd block");
  const directives = (text: string) =>
    parseSshdConfig(text.split("\n").filter((l) => !l.trimStart().startsWith("```")).join("\n"))
      .map((d) => `${d.match ?? ""}: ${d.keyword} ${d.args.join(" ")}`);
  const shipped = directives(read("packaging/sshd_config.example"));
  assertEquals(directives(block), shipped);
  assertIncludes(shipped.join("\n"), "Group xferproxy: permittty no");
});

Deno.test("forward-api.md's unit is the shipped one", () => {
  const unit = read("packaging/systemd/xferproxy-forward.service");
  const doc = passages(read("docs/forward-api.md")).find((p) => p.startsWith("```ini"));
  assertEquals(doc, "```ini\n" + unit + "```");
});

const OPTIONS: readonly OptionSpec[] = [SERVER, PROXY, RPROXY, RULE].flatMap((section) =>
  Object.values(section) as OptionSpec[]
);

Deno.test("defaults the docs and help texts quote are the spec's", () => {
  const texts = [...DOCS, ...HELP];
  let quoted = 0;
  for (const [name, text] of texts) {
    // `<tag>` (value …) and `<tag>` (default `value` …), as the docs write a default in passing.
    for (const m of text.matchAll(/`?<([a-z_]+)>`? \((?:default )?`?([^`)\s,;]+)/g)) {
      const spec = OPTIONS.find((s) => s.tag === m[1] && !s.item);
      if (!spec || !/^[\d/]/.test(m[2] as string)) continue;
      quoted++;
      const allowed = [spec.default, ...(spec.zeroMeans ? [String(spec.zeroMeans)] : [])];
      assertOk(
        allowed.includes(m[2] as string),
        `${name}: "${m[0]}" but <${spec.tag}> defaults to ${allowed.join(", built-in ")}`,
      );
    }
    // The help texts' `http_port 9091`.
    for (const m of text.matchAll(/\b([a-z]+_port) (\d+)\b/g)) {
      const spec = OPTIONS.find((s) => s.tag === m[1]);
      if (!spec) continue;
      quoted++;
      assertEquals(m[2], spec.default, `${name}: "${m[0]}"`);
    }
    for (const m of text.matchAll(/faulty for (\d+) s\b/g)) {
      quoted++;
      assertEquals(Number(m[1]), FAULTY_SECONDS, `${name}: "${m[0]}"`);
    }
    for (const path of text.match(/\/etc\/xferproxy\/[\w.-]+\.conf\b/g) ?? []) {
      quoted++;
      assertEquals(path, DEFAULT_CONFIG_PATH, `${name} names a config file ${path}`);
    }
    // The command lists, written out: `<udp_commands>`: `ascp`, … or (<udp_commands>: ascp, …).
    for (const spec of [RULE.allowed_commands, RULE.udp_commands]) {
      const first = spec.default.split(",")[0];
      const list = new RegExp(`<${spec.tag}>\`?[;:] (?:default )?(\`?${first}\`?,[^)]*)`, "g");
      for (const m of text.matchAll(list)) {
        quoted++;
        const items = (m[1] as string).replaceAll("`", "").replace(/\s+/g, " ")
          .replace(/ by default$/, "").split(", ");
        assertEquals(items.join(","), spec.default, `${name}: "${m[0]}"`);
      }
    }
  }
  assertOk(quoted >= 20, `only ${quoted} quoted defaults found`);
});

/** The packages a field's lines name, alternatives split: `a | b` and `(a or b)`. */
function dependencies(text: string, field: string): string[] {
  const lines = [...text.matchAll(new RegExp(`^${field}: (.*)$`, "gm"))].map((m) => m[1] ?? "");
  return lines.flatMap((line) =>
    line.split(/,|\||\bor\b/).map((p) => p.replace(/[()]/g, "").trim()).filter(Boolean)
  );
}

Deno.test("deno.json grants every sbin tool by name and in each sbin directory, and nothing else by path", () => {
  const granted = JSON.parse(read("deno.json")).permissions.xferproxy.run as string[];
  const named = granted.filter((p) => !p.startsWith("/"));
  for (const program of SBIN_PROGRAMS) assertOk(named.includes(program), `${program} by name`);
  const paths = SBIN_DIRECTORIES.flatMap((dir) => SBIN_PROGRAMS.map((p) => `${dir}/${p}`));
  assertEquals(granted.filter((p) => p.startsWith("/")).sort(), paths.sort());
});

Deno.test("the packages depend on what the install hints name for every program xferproxy runs", () => {
  const deno = JSON.parse(read("deno.json"));
  // Programs run through Deno's permission, plus ssh (exec'd), libnftables (loaded) and logrotate
  // (which runs the packages' logrotate file).
  const named = (deno.permissions.xferproxy.run as string[]).filter((p) => !p.startsWith("/"));
  const runs: string[] = [...named, "ssh", "libnftables", "logrotate"];
  const needed = runs.map((program) => {
    const pkg = packageOf(program);
    assertOk(pkg, `packages.ts has no package for ${program}`);
    return pkg;
  }).filter((pkg) => !pkg.base);
  const [debPart, rpmPart] = read("scripts/build-packages.sh").split("\n# .rpm\n") as [
    string,
    string,
  ];
  const deb = [...dependencies(debPart, "Depends"), ...dependencies(debPart, "Recommends")];
  const rpm = [...dependencies(rpmPart, "Requires"), ...dependencies(rpmPart, "Recommends")];
  assertEquals(new Set(deb), new Set(needed.map((p) => p.debian)), ".deb Depends and Recommends");
  assertEquals(new Set(rpm), new Set(needed.map((p) => p.redHat)), ".rpm Requires and Recommends");
  const install = read("docs/install.md");
  for (const pkg of new Set([...deb, ...rpm])) {
    assertOk(new RegExp(`\\b${pkg}\\b(?!-)`).test(install), `docs/install.md does not name ${pkg}`);
  }
});

Deno.test("the README names the Debian packages the tests install", () => {
  const script = read("scripts/install-system-deps.sh");
  const installed = new Set([...script.matchAll(/\[[\w./-]+\]=([\w.+-]+)/g)].map((m) => m[1]));
  assertOk(installed.size >= 10, "install-system-deps.sh lists no packages");
  const sentence = /the Debian packages the tests use \(([^)]*)\)/.exec(read("README.md"))?.[1];
  assertOk(sentence, "README.md does not list the tests' Debian packages");
  const listed = new Set(sentence.split(";")[0]!.split(",").map((p) => p.trim()));
  assertEquals(listed, installed);
});
