/**
 * What the config text must be before the XML parser sees it: valid UTF-8,
 * no DOCTYPE (so no entity can be defined, expanded or fetched), and no
 * deeper nesting than any aspera.conf needs (deep nesting overflows the
 * parser's stack). Pure: bytes or text in, a position and message out.
 * @module
 */

/** The deepest element nesting accepted; aspera.conf needs 6. */
export const MAX_DEPTH = 32;

/** Where the text breaks a rule: 1-based line and column. */
export interface TextProblem {
  readonly message: string;
  readonly line: number;
  readonly column: number;
}

/** Decodes UTF-8 strictly: invalid bytes are a problem with their position, never replaced. */
export function decodeUtf8(bytes: Uint8Array): { text: string } | TextProblem {
  try {
    return { text: new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes) };
  } catch {
    const at = firstInvalidByte(bytes);
    const before = new TextDecoder().decode(bytes.subarray(0, at));
    const { line, column } = positionIn(before, before.length);
    return { message: `invalid UTF-8 (byte 0x${hex(bytes[at] ?? 0)})`, line, column };
  }
}

/** A file that is not valid UTF-8, with where the first bad byte is. */
export class InvalidUtf8Error extends TypeError {
  readonly line: number;
  readonly column: number;
  constructor(problem: TextProblem) {
    super(problem.message);
    this.name = "InvalidUtf8Error";
    this.line = problem.line;
    this.column = problem.column;
  }
}

/**
 * The text of a file's bytes, for `Fs.readTextFile` implementations.
 * @throws {InvalidUtf8Error}
 */
export function strictText(bytes: Uint8Array): string {
  const decoded = decodeUtf8(bytes);
  if ("text" in decoded) return decoded.text;
  throw new InvalidUtf8Error(decoded);
}

/** Refuses DOCTYPE and entity declarations and nesting deeper than MAX_DEPTH. */
export function screenXml(text: string): TextProblem | undefined {
  let depth = 0;
  for (let i = text.indexOf("<"); i >= 0; i = text.indexOf("<", i + 1)) {
    const skip = (open: string, close: string) => {
      if (!text.startsWith(open, i)) return false;
      const end = text.indexOf(close, i + open.length);
      i = end < 0 ? text.length : end + close.length - 1;
      return true;
    };
    if (skip("<!--", "-->") || skip("<![CDATA[", "]]>") || skip("<?", "?>")) continue;
    if (text.startsWith("<!", i)) {
      return {
        message: "DOCTYPE and ENTITY declarations are not accepted in a config file",
        ...positionIn(text, i),
      };
    }
    if (text[i + 1] === "/") {
      depth--;
      continue;
    }
    const end = text.indexOf(">", i);
    if (end > 0 && text[end - 1] === "/") continue;
    if (++depth > MAX_DEPTH) {
      return { message: `elements nested deeper than ${MAX_DEPTH} levels`, ...positionIn(text, i) };
    }
  }
  return undefined;
}

function firstInvalidByte(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i] as number;
    const size = b < 0x80
      ? 1
      : b >= 0xc2 && b < 0xe0
      ? 2
      : b >= 0xe0 && b < 0xf0
      ? 3
      : b >= 0xf0 && b < 0xf5
      ? 4
      : 0;
    if (size === 0) return i;
    for (let k = 1; k < size; k++) {
      if (((bytes[i + k] ?? 0) & 0xc0) !== 0x80) return i;
    }
    // Overlong, surrogate and beyond-U+10FFFF forms the decoder refuses too.
    const b1 = bytes[i + 1] ?? 0;
    if (
      (b === 0xe0 && b1 < 0xa0) || (b === 0xed && b1 >= 0xa0) || (b === 0xf0 && b1 < 0x90) ||
      (b === 0xf4 && b1 >= 0x90)
    ) {
      return i;
    }
    i += size;
  }
  return bytes.length;
}

function positionIn(text: string, index: number): { line: number; column: number } {
  return positionFinder(text)(index);
}

/** Maps an index into `text` to its 1-based line and column; build once, ask many times. */
export function positionFinder(text: string): (index: number) => { line: number; column: number } {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
  return (index) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((lineStarts[mid] ?? 0) <= index) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: index - (lineStarts[lo] ?? 0) + 1 };
  };
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
