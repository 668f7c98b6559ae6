/**
 * The man page and the bash completion come from the table of modes: every mode's synopsis,
 * help text, commands and options are in them, whatever the usage texts say today.
 */
import { assertEquals, assertIncludes } from "../_assert.ts";
import { MODES } from "../../main.ts";
import { overview } from "../../src/cli/help.ts";
import {
  bashCompletion,
  manPage,
  modeWords,
  roff,
  synopsis,
} from "../../scripts/dist/mode_docs.ts";

const page = manPage(MODES, overview(MODES), "9.9.9", "2026-12-05");
const completion = bashCompletion(MODES);

Deno.test("the man page holds every mode's help text, line for line", () => {
  assertIncludes(page, '.TH XFERPROXY 1 "2026-12-05" "xferproxy 9.9.9" "User Commands"');
  for (const mode of MODES) {
    assertIncludes(
      page,
      `.SS ${mode.name}\n.nf\n${mode.usage.split("\n").map(roff).join("\n")}\n.fi`,
    );
  }
  assertIncludes(
    page,
    roff(
      "  --config PATH   config file (default: $XFERPROXY_CONFIG, else /etc/xferproxy/aspera.conf;",
    ),
  );
});

Deno.test("roff() escapes what roff would read as markup", () => {
  assertEquals(roff(".config 'x' a\\b --json …"), "\\&.config 'x' a\\eb \\-\\-json \\[u2026]");
});

Deno.test("the words of each mode, read from its usage", () => {
  const words = Object.fromEntries(MODES.map((m) => [m.name, modeWords(m)]));
  assertEquals(words.check?.commands, ["config", "defaults", "system", "users", "upstreams"]);
  assertEquals(words.dnat?.commands, ["add", "del", "list", "reap", "serve", "drain", "undrain"]);
  assertEquals(words.forward?.commands, ["serve", "user", "connect"]);
  assertEquals(words.forward?.subcommands.get("user"), ["add", "del", "list"]);
  assertEquals(words.reverse?.options, ["--config"]);
  assertEquals(words.check?.values.get("--root"), "dir");
  assertEquals(words.check?.values.get("--sshd-config"), "file");
  assertEquals(words.check?.values.has("--json"), false);
  assertEquals(words.forward?.values.get("--proxy"), "other");
});

Deno.test("the completion offers every mode, command and option the usage texts name", () => {
  for (const mode of MODES) {
    assertIncludes(completion, `    ${mode.name})\n`);
    for (const option of mode.usage.match(/(?<![\w-])--[a-z][a-z0-9-]*/g) ?? []) {
      const block = completion.slice(completion.indexOf(`    ${mode.name})\n`));
      assertIncludes(block.slice(0, block.indexOf(";;\n")), option, `${mode.name} ${option}`);
    }
  }
  assertIncludes(completion, `-W "${MODES.map((m) => m.name).join(" ")} --help"`);
});

Deno.test("synopsis() joins a form's continuation lines", () => {
  const forward = MODES.find((m) => m.name === "forward");
  assertEquals(
    synopsis(forward!).at(-1),
    "xferproxy forward connect --proxy dnat[s]://user@host[:port] DEST [PORT] [--password-file FILE] [--udp-port N] [--print-mapping] [--cacert FILE]",
  );
});
