import { assertEquals, assertThrows } from "../_assert.ts";
import { parseXml, XmlSyntaxError } from "../../src/config/raw.ts";

Deno.test("parseXml() gives every element its line and column", () => {
  const root = parseXml(
    `<?xml version="1.0"?>\n<CONF version="2">\n  <server>\n\t<http_port> 9091 </http_port>\n  </server>\n</CONF>`,
  );
  assertEquals([root.name, root.line, root.column, root.attributes], ["CONF", 2, 1, {
    version: "2",
  }]);
  const server = root.children[0]!;
  assertEquals([server.name, server.line, server.column], ["server", 3, 3]);
  const port = server.children[0]!;
  assertEquals([port.name, port.line, port.column, port.text], ["http_port", 4, 2, "9091"]);
});

Deno.test("parseXml() skips comments and keeps CDATA as text", () => {
  const root = parseXml(`<a><!-- note --><b><![CDATA[x<y]]></b><!-- c --></a>`);
  assertEquals(root.children.map((c) => [c.name, c.text]), [["b", "x<y"]]);
});

Deno.test("parseXml() reports where malformed XML broke", async (t) => {
  const cases: Array<[string, string, number, number, string]> = [
    ["mismatched close", `<server>\n<rproxy>\n</server>`, 3, 1, "Expected closing tag 'rproxy'"],
    ["unclosed root", `<server>\n<rproxy></rproxy>\n`, 1, 1, "Unclosed tag 'server'"],
    [
      "bad attribute",
      `<server>\n<rule host_ip=7.7.7.7></rule></server>`,
      2,
      7,
      "Attribute 'host_ip' is without value",
    ],
    ["not xml", `just text`, 1, 1, "char 'j' is not expected"],
    ["empty", ``, 1, 1, "The file is empty"],
    ["two roots", `<server/>\n<server/>`, 2, 1, "More than one root element (<server>)"],
  ];
  for (const [name, text, line, column, fragment] of cases) {
    await t.step(name, () => {
      const error = assertThrows(() => parseXml(text), XmlSyntaxError, fragment);
      assertEquals([error.line, error.column], [line, column]);
    });
  }
});

Deno.test("parseXml() refuses DOCTYPE, entities and deep nesting with a position, never expands", async (t) => {
  const laughs =
    `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n<server>&lol2;</server>`;
  const cases: Array<[string, string, number, number, string]> = [
    [
      "internal entity (billion laughs)",
      laughs,
      1,
      1,
      "DOCTYPE and ENTITY declarations are not accepted in a config file",
    ],
    [
      "external entity",
      `<?xml version="1.0"?>\n  <!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/shadow">]><server>&x;</server>`,
      2,
      3,
      "DOCTYPE and ENTITY declarations are not accepted in a config file",
    ],
    [
      "nesting 10,000 deep",
      "<a>".repeat(10_000) + "</a>".repeat(10_000),
      1,
      1 + 3 * 32,
      "elements nested deeper than 32 levels",
    ],
  ];
  for (const [name, xml, line, column, message] of cases) {
    await t.step(name, () => {
      const error = assertThrows(() => parseXml(xml), XmlSyntaxError);
      assertEquals([error.line, error.column, error.message], [line, column, message]);
    });
  }
  await t.step("a comment or CDATA that mentions DOCTYPE is fine", () => {
    const root = parseXml(`<a><!-- <!DOCTYPE x> --><b><![CDATA[<!ENTITY>]]></b><c/></a>`);
    assertEquals(root.children.map((c) => [c.name, c.text]), [["b", "<!ENTITY>"], ["c", ""]]);
  });
});
