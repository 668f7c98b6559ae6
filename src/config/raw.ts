/**
 * XML text → a plain element tree with line and column numbers.
 * Nothing here knows what the tags mean; see `validate.ts` for that.
 * @module
 */

import { XMLParser, XMLValidator } from "fast-xml-parser";
import { positionFinder, screenXml } from "./text.ts";

/** One XML element, as written in the file. */
export interface RawElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** The element's own text, trimmed (text of children excluded). */
  readonly text: string;
  readonly children: readonly RawElement[];
  /** 1-based position of the element's `<`. */
  readonly line: number;
  readonly column: number;
}

/** Malformed XML, with the position where parsing broke. */
export class XmlSyntaxError extends SyntaxError {
  readonly line: number;
  readonly column: number;
  constructor(message: string, line: number, column: number) {
    super(message);
    this.name = "XmlSyntaxError";
    this.line = line;
    this.column = column;
  }
}

const ATTRIBUTES = ":@";
const TEXT = "#text";
const COMMENT = "#comment";
const CDATA = "#cdata";

type OrderedNode = Record<string, unknown> & { [ATTRIBUTES]?: Record<string, string> };

/**
 * Parses XML text into its document element.
 * @throws {XmlSyntaxError} when the text is not well-formed XML or has no element
 */
export function parseXml(text: string): RawElement {
  if (text.trim() === "") throw new XmlSyntaxError("The file is empty", 1, 1);
  const refused = screenXml(text);
  if (refused) throw new XmlSyntaxError(refused.message, refused.line, refused.column);
  const verdict = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (verdict !== true) {
    const { msg, line, col } = verdict.err;
    throw new XmlSyntaxError(msg.replace(/\.$/, ""), line, col);
  }
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: "",
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    commentPropName: COMMENT,
    cdataPropName: CDATA,
    captureMetaData: true,
    // Only the five predefined entities and character references: a DOCTYPE never gets here.
    processEntities: true,
    htmlEntities: false,
  });
  const nodes = parser.parse(text) as OrderedNode[];
  const position = positionFinder(text);
  const meta = XMLParser.getMetaDataSymbol() as unknown as symbol;
  const toElement = (node: OrderedNode): RawElement | undefined => {
    const name = Object.keys(node).find((k) =>
      k !== ATTRIBUTES && !k.startsWith("#") && k !== "?xml"
    );
    if (name === undefined) return undefined;
    const content = (node[name] ?? []) as OrderedNode[];
    const start = (node as Record<symbol, { startIndex?: number } | undefined>)[meta]?.startIndex ??
      0;
    const { line, column } = position(start);
    let ownText = "";
    const children: RawElement[] = [];
    for (const child of content) {
      if (TEXT in child) ownText += String(child[TEXT]);
      else if (CDATA in child) ownText += cdataText(child[CDATA]);
      else if (!(COMMENT in child)) {
        const element = toElement(child);
        if (element) children.push(element);
      }
    }
    return {
      name,
      attributes: { ...node[ATTRIBUTES] },
      text: ownText.trim(),
      children,
      line,
      column,
    };
  };
  const roots = nodes.map(toElement).filter((e): e is RawElement => e !== undefined);
  const root = roots[0];
  if (!root) throw new XmlSyntaxError("No XML element found", 1, 1);
  if (roots.length > 1) {
    const extra = roots[1] as RawElement;
    throw new XmlSyntaxError(
      `More than one root element (<${extra.name}>)`,
      extra.line,
      extra.column,
    );
  }
  return root;
}

function cdataText(value: unknown): string {
  return Array.isArray(value)
    ? value.map((v) => String((v as Record<string, unknown>)[TEXT] ?? "")).join("")
    : String(value);
}
