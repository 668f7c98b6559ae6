/**
 * The command policy against the real login shells an internal account may have: sh, bash,
 * dash, zsh, tcsh and BSD csh each run `SHELL -c COMMAND` as an internal sshd would, and print
 * the words they read. Every command the policy passes must be read as the same words by all
 * six; every construct it refuses for the shells' sake is read differently by at least one.
 * Needs the Debian packages tcsh, csh and zsh (scripts/install-system-deps.sh).
 */
import { assertEquals, assertOk } from "../_assert.ts";
import { run } from "../testbed/exec.ts";
import { scanCommand } from "../../src/ssh/shell_words.ts";
import { checkCommand } from "../../src/ssh/policy.ts";

const SHELLS: ReadonlyArray<readonly [string, string]> = [
  ["sh", "/bin/sh"],
  ["bash", "/bin/bash"],
  ["dash", "/bin/dash"],
  ["zsh", "/usr/bin/zsh"],
  ["tcsh", "/usr/bin/tcsh"],
  // Debian's csh alternative may point at tcsh; BSD csh itself is bsd-csh.
  ["csh", "/usr/bin/bsd-csh"],
];

/** Prints each word NUL-terminated; the same in every shell (`\\` is a backslash in all). */
const PRINT = "/usr/bin/printf %s\\\\0 ";

async function missingShells(): Promise<string[]> {
  const missing: string[] = [];
  for (const [name, path] of SHELLS) {
    if (!(await Deno.stat(path).then(() => true, () => false))) missing.push(name);
  }
  return missing;
}

/** What `shell -c PRINT+args` printed: its words, or why it printed none. */
async function wordsIn(
  shell: string,
  args: string,
  dir: string,
  lang: string,
): Promise<string[] | string> {
  const ran = await run([shell, "-c", PRINT + args], {
    cwd: dir,
    env: { HOME: `${dir}/home`, PATH: "/usr/bin:/bin", LANG: lang },
    timeoutMs: 10_000,
  });
  if (ran.code !== 0 || ran.signal !== null) {
    return `exit ${ran.code} ${ran.signal ?? ""} ${ran.stderr.trim()}`.trim();
  }
  return ran.stdout.split("\0").slice(0, -1);
}

/** The words every shell read, by shell name. */
async function readings(args: string, dir: string, lang = "C.UTF-8") {
  const out: Record<string, string[] | string> = {};
  for (const [name, path] of SHELLS) out[name] = await wordsIn(path, args, dir, lang);
  return out;
}

/** A small deterministic generator, so a failure can be replayed from its seed. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Everything a shell might treat specially, and plain text. Left out, tested below: globs (what
// they match depends on the directory).
const ALPHABET = [
  ..."aZ9-_./,:=@%+^~",
  ..."!#{}\\'\"",
  " ",
  "\t",
  "\n",
  "\r",
  "\v",
  "\x01",
  "\x7f",
  ..."$`;&|<>()",
  "é",
  "日",
  "😀",
  "\u2028",
  "\u202e",
];

/**
 * A random command line: words of quoted, escaped and plain parts, so that most of them are
 * plain commands whose quoting is worth comparing.
 */
function randomArgs(random: () => number): string {
  const pick = () => ALPHABET[Math.floor(random() * ALPHABET.length)] as string;
  const some = (n: number) => Array.from({ length: Math.floor(random() * n) }, pick).join("");
  const part = () => {
    const kind = random();
    if (kind < 0.25) return `'${some(5).replaceAll("'", "")}'`;
    if (kind < 0.5) return `"${some(5)}"`;
    if (kind < 0.7) return `\\${pick()}`;
    return some(4) || "a";
  };
  const word = () => Array.from({ length: 1 + Math.floor(random() * 3) }, part).join("");
  return Array.from({ length: 1 + Math.floor(random() * 4) }, word).join(
    random() < 0.8 ? " " : "\t",
  );
}

Deno.test({
  name: "every command the policy passes is the same words in sh, bash, dash, zsh, tcsh and csh",
  sanitizeResources: false,
  async fn() {
    assertEquals(await missingShells(), [], "apt-get install -y tcsh csh zsh");
    const dir = await Deno.makeTempDir({ prefix: "xferproxy-shells-" });
    await Deno.mkdir(`${dir}/home`);
    const seed = Number(Deno.env.get("XFERPROXY_FUZZ_SEED") ?? Date.now() % 1_000_000);
    const random = generator(seed);
    const deadline = Date.now() + 120_000;
    let compared = 0;
    try {
      for (
        let attempt = 0;
        attempt < 20_000 && compared < 250 && Date.now() < deadline;
        attempt++
      ) {
        const args = `${randomArgs(random)} END`;
        const { split, shellsDiffer } = scanCommand(PRINT + args);
        if (!split.ok || shellsDiffer !== undefined) continue;
        const lang = compared % 2 === 0 ? "C.UTF-8" : "C";
        const read = await readings(args, dir, lang);
        // A "~" the shells expand becomes the home directory: then sh's reading is the measure,
        // with as many words as the policy saw.
        const expected = args.includes("~") ? read.sh : split.words.slice(2);
        assertEquals(
          Array.isArray(expected) && expected.length,
          split.words.length - 2,
          `sh read ${JSON.stringify(args)} as ${JSON.stringify(expected)} (seed ${seed})`,
        );
        for (const [name, words] of Object.entries(read)) {
          assertEquals(
            words,
            expected,
            `${name} read ${
              JSON.stringify(args)
            } otherwise (LANG=${lang}, XFERPROXY_FUZZ_SEED=${seed})`,
          );
        }
        compared++;
      }
      assertOk(compared >= 50, `only ${compared} commands compared (seed ${seed})`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "globs and ~ that the policy passes name the same files and home in every shell",
  sanitizeResources: false,
  async fn(t) {
    assertEquals(await missingShells(), [], "apt-get install -y tcsh csh zsh");
    const dir = await Deno.makeTempDir({ prefix: "xferproxy-shells-" });
    await Deno.mkdir(`${dir}/home`);
    for (const name of ["a.txt", "b.txt", "c.log"]) await Deno.writeTextFile(`${dir}/${name}`, "");
    const cases: Array<[string, string[]]> = [
      ["./*.txt", ["./a.txt", "./b.txt"]],
      ["a?txt", ["a.txt"]],
      ["[ab].txt", ["a.txt", "b.txt"]],
      ["~", [`${dir}/home`]],
      ["~/in x~ a~b", [`${dir}/home/in`, "x~", "a~b"]],
      ["'*' \\? \"[a]\" '~' \\~", ["*", "?", "[a]", "~", "~"]],
    ];
    try {
      for (const [args, words] of cases) {
        await t.step(args, async () => {
          const { split, shellsDiffer } = scanCommand(PRINT + args);
          assertOk(split.ok && shellsDiffer === undefined, `the policy passes ${args}`);
          for (const [name, read] of Object.entries(await readings(`${args} END`, dir))) {
            assertEquals(read, [...words, "END"], name);
          }
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "what the policy refuses for the shells' sake is read otherwise by at least one of them",
  sanitizeResources: false,
  async fn(t) {
    assertEquals(await missingShells(), [], "apt-get install -y tcsh csh zsh");
    const dir = await Deno.makeTempDir({ prefix: "xferproxy-shells-" });
    await Deno.mkdir(`${dir}/home`);
    // Each: the arguments, and the shell that reads them otherwise than sh.
    const cases: Array<[string, string]> = [
      [`. "\\" --daemon --config=/home/u/up.conf "\\"`, "tcsh"],
      [`. "\\" --daemon --config=/home/u/up.conf "\\"`, "csh"],
      ["'a!b'", "tcsh"],
      ["a!b", "csh"],
      [`"!x"`, "tcsh"],
      [`"a\\\\b"`, "csh"],
      ["'a\nb'", "tcsh"],
      ["a#b --daemon", "csh"],
      ["x{}", "csh"],
      ["{a,b}", "bash"],
      ["{a}", "tcsh"],
      ["~+", "bash"],
      ["~-", "zsh"],
      ["x=~", "bash"],
      ["PATH=a:~", "bash"],
      ["=0", "tcsh"],
      ["=ls", "zsh"],
    ];
    try {
      for (const [args, differs] of cases) {
        await t.step(`${JSON.stringify(args)} (${differs})`, async () => {
          const command = `rsync --server ${args}`;
          const { split, shellsDiffer } = scanCommand(command);
          assertOk(split.ok, `sh splits ${command}`);
          assertOk(shellsDiffer !== undefined, `the policy notes ${command}`);
          const verdict = checkCommand([{ kind: "exec", argv: ["rsync", "--server"] }], {
            kind: "exec",
            command,
          });
          assertEquals(verdict.allowed, false);
          const read = await readings(`${args} END`, dir);
          assertOk(
            JSON.stringify(read[differs]) !== JSON.stringify(read.sh),
            `${differs} reads ${args} as sh does: ${JSON.stringify(read)}`,
          );
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
