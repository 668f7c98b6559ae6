/**
 * Characters a copy from a PDF puts into config text: typographic ligatures
 * (`keyﬁle`, one character for "fi") and curly quotes (`host_ip=”7.7.7.7”`).
 * Found before the XML parser sees the text, each with its line, column, what
 * it is and what to type instead; pure.
 *
 * Where: a ligature anywhere but in a comment (tag and attribute names and
 * values, element text, CDATA), because every value xferproxy reads is a name,
 * number, address, path or command, where a ligature is never meant. A curly
 * quote where XML needs a straight one: in markup, outside a straight-quoted
 * attribute value (inside one, and in element text, it is just a character,
 * which the option's own parser judges). Comments are free text and are not
 * looked at; other non-ASCII text (é, ß, 中) is never refused.
 * @module
 */

import { positionFinder } from "./text.ts";

/** The Unicode ligatures (U+FB00–U+FB06) and the letters each stands for. */
export const LIGATURES: Readonly<Record<string, string>> = {
  "\uFB00": "ff",
  "\uFB01": "fi",
  "\uFB02": "fl",
  "\uFB03": "ffi",
  "\uFB04": "ffl",
  "\uFB05": "st",
  "\uFB06": "st",
};

/** Curly quotes and the straight quote XML needs instead. */
export const CURLY_QUOTES: Readonly<Record<string, string>> = {
  "\u201C": '"',
  "\u201D": '"',
  "\u2018": "'",
  "\u2019": "'",
};

/** One such character: where it is, the tag it is about, and the message. */
export interface PdfCharacter {
  readonly line: number;
  readonly column: number;
  /** The element it is in or about, ligatures spelled out (`keyfile`). */
  readonly tag: string;
  readonly message: string;
}

/** Every ligature and misplaced curly quote in `text`, in file order. */
export function findPdfCharacters(text: string): PdfCharacter[] {
  const found: PdfCharacter[] = [];
  const position = positionFinder(text);
  const report = (index: number, tag: string, message: string) =>
    found.push({ ...position(index), tag: spelledOut(tag), message });
  const ligatures = (from: number, to: number, tag: string, where: string) => {
    for (let i = from; i < to; i++) {
      const letters = LIGATURES[text[i] as string];
      if (letters) report(i, tag, ligatureMessage(where, text[i] as string, letters));
    }
  };
  const open: string[] = [];
  let i = 0;
  while (i < text.length) {
    const lt = text.indexOf("<", i);
    const end = lt < 0 ? text.length : lt;
    const parent = open.at(-1);
    ligatures(i, end, parent ?? "", parent ? `the value of <${parent}>` : "text outside elements");
    if (lt < 0) break;
    if (text.startsWith("<!--", lt)) {
      i = after(text, "-->", lt + 4);
    } else if (text.startsWith("<![CDATA[", lt)) {
      const close = text.indexOf("]]>", lt + 9);
      const stop = close < 0 ? text.length : close;
      ligatures(lt + 9, stop, parent ?? "", `the value of <${parent ?? ""}>`);
      i = after(text, "]]>", lt + 9);
    } else {
      const tag = readMarkup(text, lt, report);
      if (tag.kind === "start") open.push(tag.name);
      if (tag.kind === "end") open.pop();
      i = tag.end;
    }
  }
  return found;
}

type Report = (index: number, tag: string, message: string) => void;

/**
 * Reads one `<…>` from `lt` to its `>` (outside straight quotes), reporting
 * ligatures in names and values and curly quotes outside straight-quoted values.
 */
function readMarkup(
  text: string,
  lt: number,
  report: Report,
): { kind: "start" | "end" | "other"; name: string; end: number } {
  const lead = text[lt + 1];
  const kind = lead === "/" ? "end" : lead === "?" || lead === "!" ? "other" : "start";
  let i = kind === "start" ? lt + 1 : lt + 2;
  const nameStart = i;
  while (i < text.length && !/[\s/>?=]/.test(text[i] as string)) i++;
  const name = text.slice(nameStart, i);
  const shown = kind === "end" ? `</${name}>` : lead === "?" ? `<?${name}?>` : `<${name}>`;
  for (let k = nameStart; k < i; k++) {
    const c = text[k] as string;
    if (LIGATURES[c]) report(k, name, ligatureMessage(`the tag name ${shown}`, c, LIGATURES[c]));
    if (CURLY_QUOTES[c]) report(k, name, quoteMessage(shown, c, CURLY_QUOTES[c]));
  }
  // Outside straight quotes: reading an attribute's name (`attribute` undefined) or its value.
  let word = "";
  let attribute: string | undefined;
  let valueStarted = false;
  let quote: string | undefined;
  for (; i < text.length; i++) {
    const c = text[i] as string;
    const where = attribute === undefined ? shown : `attribute ${attribute} of ${shown}`;
    if (quote) {
      if (c === quote) [quote, attribute] = [undefined, undefined];
      else if (LIGATURES[c]) report(i, name, ligatureMessage(where, c, LIGATURES[c]));
      continue;
    }
    if (c === ">") return { kind: text[i - 1] === "/" ? "other" : kind, name, end: i + 1 };
    if (CURLY_QUOTES[c]) {
      report(i, name, quoteMessage(where, c, CURLY_QUOTES[c]));
      if (attribute !== undefined) valueStarted = true;
    } else if (LIGATURES[c] && attribute === undefined) {
      const rest = /^[^\s=>/"'\u2018\u2019\u201C\u201D]*/.exec(text.slice(i + 1))?.[0] ?? "";
      const at = `the attribute name ${word}${c}${rest} of ${shown}`;
      report(i, name, ligatureMessage(at, c, LIGATURES[c]));
    } else if (LIGATURES[c]) {
      report(i, name, ligatureMessage(where, c, LIGATURES[c]));
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === "=" && attribute === undefined) {
      [attribute, word, valueStarted] = [word, "", false];
    } else if (/\s/.test(c)) {
      if (attribute !== undefined && valueStarted) attribute = undefined;
      word = "";
    } else if (!CURLY_QUOTES[c]) {
      if (attribute === undefined) word += c;
      else valueStarted = true;
    }
  }
  return { kind: "other", name, end: text.length };
}

function ligatureMessage(where: string, char: string, letters: string): string {
  return `${where} holds the typographic ligature "${char}" (${
    codePoint(char)
  }) of a PDF copy: type the letters "${letters}" instead`;
}

function quoteMessage(where: string, char: string, straight: string): string {
  return `${where} holds the curly quote "${char}" (${
    codePoint(char)
  }) of a PDF copy where XML needs a straight quote: type ${straight} instead`;
}

function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

function spelledOut(tag: string): string {
  return [...tag].map((c) => LIGATURES[c] ?? c).join("");
}

function after(text: string, close: string, from: number): number {
  const at = text.indexOf(close, from);
  return at < 0 ? text.length : at + close.length;
}
