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
