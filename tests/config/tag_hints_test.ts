/**
 * Unknown tags: an error inside <rule>, where an ignored typo changes as whom or where partners
 * log in; a warning elsewhere; both with "did you mean" derived from the spec tables.
 */
import { assertEquals } from "../_assert.ts";
import { RULE } from "../../src/config/spec.ts";
import { nearestTags } from "../../src/config/tag_hints.ts";
import { errorsOf, parseFixture, parseInline, warningsOf } from "./_load.ts";

Deno.test("a typo inside <rule> is an error that names the tag it looks like", () => {
  const report = parseFixture("typos/squash_usr.conf");
  assertEquals(report.config, undefined);
  assertEquals(errorsOf(report), [
    "9: unknown tag <squash_usr> in <rule>; did you mean <squash_user>?",
  ]);
  assertEquals(warningsOf(report), [
    "13: unknown tag <conect_timeout> in <rproxy> (ignored); did you mean <connect_timeout>?",
  ]);
  assertEquals(report.problems.map((p) => [p.line, p.column, p.tag]), [
    [9, 1, "squash_usr"],
    [13, 1, "conect_timeout"],
  ]);
});

Deno.test("every unknown tag inside <rule> is an error, with the best hint there is", () => {
  const rule = (body: string) =>
    `<server>\n<rproxy>\n<rules>\n<rule>\n<host>198.18.2.2</host>\n${body}\n</rule>\n</rules>\n</rproxy>\n</server>`;
  const cases: Array<[string, string]> = [
    ["<Keyfile>/k</Keyfile>", "unknown tag <Keyfile> in <rule>; did you mean <keyfile>?"],
    [
      "<squash-user>x</squash-user>",
      "unknown tag <squash-user> in <rule>; did you mean <squash_user>?",
    ],
    ["<hots/>", "unknown tag <hots> in <rule>; did you mean <host> or <hosts>?"],
    ["<log_level>1</log_level>", "unknown tag <log_level> in <rule>; it belongs in <rproxy>"],
    [
      "<colour>blue</colour>",
      "unknown tag <colour> in <rule>; correct or remove it: an ignored tag would change what the rule does",
    ],
  ];
  for (const [body, message] of cases) {
    // Even with the reverse proxy off: the file is wrong either way.
    assertEquals(errorsOf(parseInline(rule(body))), [`6: ${message}`]);
  }
});

Deno.test("a typo of any rule option gets its hint: derived from the spec table", () => {
  for (const tag of Object.keys(RULE)) {
    const typo = tag.slice(0, -1);
    const report = parseInline(
      `<server><rproxy><rules><rule><${typo}/></rule></rules></rproxy></server>`,
    );
    assertEquals(errorsOf(report), [`1: unknown tag <${typo}> in <rule>; did you mean <${tag}>?`]);
  }
});

Deno.test("outside <rule> a typo is a warning with the same hint", () => {
  const report = parseInline(
    `<CONF version="2">\n<sever/>\n<server>\n<enable_htps>true</enable_htps>\n<proxy><authentification>true</authentification></proxy>\n<rproxy>\n<rules>\n<rul/>\n</rules>\n</rproxy>\n</server>\n</CONF>`,
  );
  assertEquals(errorsOf(report), []);
  assertEquals(warningsOf(report), [
    "2: <sever> in <CONF> is not used by xferproxy (ignored); did you mean <server>?",
    "4: unknown tag <enable_htps> in <server> (ignored); did you mean <enable_https>?",
    "5: unknown tag <authentification> in <proxy> (ignored); did you mean <authentication>?",
    "8: unknown tag <rul> in <rules> (ignored); did you mean <rule>?",
  ]);
});

Deno.test("nearestTags() offers only near misses, and every one of a tie", () => {
  const known = ["host", "hosts", "keyfile", "proxy_port", "udp_port", "squash_user"];
  const cases: Array<[string, string[]]> = [
    ["SQUASH-USER", ["squash_user"]],
    ["squash_usr", ["squash_user"]],
    ["keyfiel", ["keyfile"]],
    ["hots", ["host", "hosts"]],
    ["hostss", ["hosts"]],
    // Short names get one edit, longer ones two: "port" is two away from "host", not a typo of it.
    ["port", []],
    ["udp_prt", ["udp_port"]],
    ["proxy", []],
    ["colour", []],
  ];
  for (const [tag, expected] of cases) assertEquals(nearestTags(tag, known), expected, tag);
});
