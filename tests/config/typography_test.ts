import { assertEquals, assertRejects } from "../_assert.ts";
import { ConfigError, loadConfig } from "../../src/config/mod.ts";
import { CURLY_QUOTES, findPdfCharacters, LIGATURES } from "../../src/config/typography.ts";
import { createFakeFs } from "../_fakes/fs.ts";
import { fixtureText, parseFixture } from "./_load.ts";
import type { ConfigReport } from "../../src/config/mod.ts";

/** `line:column <tag> message` for each problem of a report. */
function placed(report: ConfigReport): string[] {
  return report.problems.map((p) => `${p.line}:${p.column} ${p.severity} <${p.tag}> ${p.message}`);
}

const FI =
  `holds the typographic ligature "ﬁ" (U+FB01) of a PDF copy: type the letters "fi" instead`;
const CURLY = `holds the curly quote "”" (U+201D) of a PDF copy where XML needs a straight quote`;

Deno.test("the seed's two-rule example copied from the PDF: every ligature, where it is", () => {
  const report = parseFixture("pdf/two_rules_copied.conf");
  assertEquals(report.config, undefined);
  assertEquals(report.fatal, undefined);
  assertEquals(placed(report), [
    `10:52 error <keyfile> the tag name </keyﬁle> ${FI}`,
    `14:5 error <keyfile> the tag name <keyﬁle> ${FI}`,
    `14:39 error <keyfile> the tag name </keyﬁle> ${FI}`,
  ]);
});

Deno.test("the seed's rule attributes copied from the PDF: each curly quote, what to type", () => {
  const report = parseFixture("pdf/rule_attributes_copied.conf");
  assertEquals(report.config, undefined);
  assertEquals(placed(report), [
    `7:19 error <rule> attribute host_domain of <rule> ${CURLY}: type " instead`,
    `7:43 error <rule> attribute host_domain of <rule> ${CURLY}: type " instead`,
    `8:9 error <rule> attribute host_ip of <rule> ${CURLY}: type " instead`,
    `8:17 error <rule> attribute host_ip of <rule> ${CURLY}: type " instead`,
  ]);
});

Deno.test("loadConfig() names the file, line, column and character of the first one", async () => {
  const fs = createFakeFs({ "a.conf": fixtureText("pdf/rule_attributes_copied.conf") });
  const error = await assertRejects(() => loadConfig("a.conf", fs), ConfigError);
  assertEquals(
    error.message,
    `Cannot load config "a.conf": line 7, column 19: attribute host_domain of <rule> ${CURLY}: type " instead`,
  );
});

Deno.test("comments, curly quotes in values and other non-ASCII text load unchanged", () => {
  const report = parseFixture("pdf/free_text.conf");
  assertEquals(report.problems, []);
  const rproxy = report.config!.server.rproxy;
  assertEquals(rproxy.rules[0]!.squashUser, "josé");
  assertEquals(rproxy.rules[0]!.keyfile, "/etc/xferproxy/keys/clé_équipe");
  assertEquals(rproxy.rules[1]!.keyfile, "/home/$(user)/.ssh/id_ed25519");
  assertEquals(rproxy.logDirectory, "/var/log/d’Artagnan");
});

Deno.test("findPdfCharacters() looks where each character would do harm", async (t) => {
  const cases: Array<[string, string, string[]]> = [
    [
      "a ligature in an element's value",
      `<server>\n<rproxy><log_directory>/var/log/proﬁles</log_directory></rproxy></server>`,
      [
        `2:36 <log_directory> the value of <log_directory> holds the typographic ligature "ﬁ" (U+FB01) of a PDF copy: type the letters "fi" instead`,
      ],
    ],
    [
      "a ligature in CDATA, after a self-closing sibling",
      `<a><b/><c><![CDATA[x\uFB02y]]></c></a>`,
      [
        `1:21 <c> the value of <c> holds the typographic ligature "ﬂ" (U+FB02) of a PDF copy: type the letters "fl" instead`,
      ],
    ],
    [
      "a ligature in an attribute name and in a straight-quoted value",
      `<rule host_\uFB03x="a\uFB00b"/>`,
      [
        `1:12 <rule> the attribute name host_ﬃx of <rule> holds the typographic ligature "ﬃ" (U+FB03) of a PDF copy: type the letters "ffi" instead`,
        `1:17 <rule> attribute host_ﬃx of <rule> holds the typographic ligature "ﬀ" (U+FB00) of a PDF copy: type the letters "ff" instead`,
      ],
    ],
    [
      "single curly quotes ask for a straight single quote",
      `<?xml version=‘1.0’?><CONF/>`,
      [
        `1:15 <xml> attribute version of <?xml?> holds the curly quote "‘" (U+2018) of a PDF copy where XML needs a straight quote: type ' instead`,
        `1:19 <xml> attribute version of <?xml?> holds the curly quote "’" (U+2019) of a PDF copy where XML needs a straight quote: type ' instead`,
      ],
    ],
    [
      "a curly quote inside a straight-quoted value is the value's business",
      `<rule host_domain="o’neil" host_ip=“1.2.3.4”/>`,
      [
        `1:36 <rule> attribute host_ip of <rule> holds the curly quote "“" (U+201C) of a PDF copy where XML needs a straight quote: type " instead`,
        `1:44 <rule> attribute host_ip of <rule> holds the curly quote "”" (U+201D) of a PDF copy where XML needs a straight quote: type " instead`,
      ],
    ],
    ["comments hold anything", `<a><!-- “ﬁ” ‘ﬆ’ --></a>`, []],
    ["curly quotes in element text", `<a>“quoted” d’Artagnan</a>`, []],
  ];
  for (const [name, text, expected] of cases) {
    await t.step(name, () => {
      assertEquals(
        findPdfCharacters(text).map((f) => `${f.line}:${f.column} <${f.tag}> ${f.message}`),
        expected,
      );
    });
  }
});

Deno.test("findPdfCharacters() knows every ligature U+FB00-U+FB06 and the four curly quotes", () => {
  assertEquals(Object.keys(LIGATURES).map((c) => c.codePointAt(0)), [
    0xfb00,
    0xfb01,
    0xfb02,
    0xfb03,
    0xfb04,
    0xfb05,
    0xfb06,
  ]);
  for (const [char, letters] of Object.entries(LIGATURES)) {
    // What to type instead is Unicode's own compatibility mapping of the ligature.
    assertEquals(char.normalize("NFKC"), letters);
    assertEquals(findPdfCharacters(`<k${char}/>`).length, 1, `U+${char.codePointAt(0)}`);
  }
  for (const char of Object.keys(CURLY_QUOTES)) {
    assertEquals(findPdfCharacters(`<rule a=${char}x${char}/>`).length, 2);
  }
});
