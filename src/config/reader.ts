/**
 * Reads one section of the raw tree against its spec table: known tags are
 * parsed (or defaulted), unknown tags warned about (refused where ignoring
 * one would change what the section does), repeats refused.
 * @module
 */

import type { RawElement } from "./raw.ts";
import type { OptionSpec } from "./spec.ts";
import { SPELLINGS, unknownTagHint } from "./tag_hints.ts";
import type { Position, Problem } from "./types.ts";

/** Collects problems in file order. */
export class Problems {
  readonly #list: Problem[] = [];

  error(at: Position, tag: string, message: string): void {
    this.#list.push({ severity: "error", line: at.line, column: at.column, tag, message });
  }

  warn(at: Position, tag: string, message: string, fix?: string): void {
    this.#list.push({
      severity: "warning",
      line: at.line,
      column: at.column,
      tag,
      message,
      ...(fix !== undefined ? { fix } : {}),
    });
  }

  get hasErrors(): boolean {
    return this.#list.some((p) => p.severity === "error");
  }

  /** All problems, sorted by position. */
  list(): Problem[] {
    return [...this.#list].sort((a, b) => a.line - b.line || a.column - b.column);
  }
}

/** How a section treats its tags beyond the ones it knows. */
export interface SectionOptions {
  /** Known tags that may appear more than once (read them from `element`). */
  readonly repeatable?: readonly string[];
  /**
   * Unknown tags are errors, not warnings: in a `<rule>`, an ignored
   * `<squash_usr>` would change as whom partners log in.
   */
  readonly strict?: boolean;
}

/** Typed access to the options of one section. */
export class SectionReader {
  readonly #problems: Problems;
  readonly #element: RawElement | undefined;
  readonly #byTag = new Map<string, RawElement>();

  /**
   * @param element the section, or undefined when the file leaves it out (all defaults)
   * @param known tags this section may hold: its options and its sub-sections
   */
  constructor(
    problems: Problems,
    element: RawElement | undefined,
    known: readonly string[],
    options: SectionOptions = {},
  ) {
    const { repeatable = [], strict = false } = options;
    this.#problems = problems;
    this.#element = element;
    if (!element) return;
    if (element.text !== "") {
      problems.warn(
        element,
        element.name,
        `<${element.name}> holds stray text "${short(element.text)}" (ignored)`,
      );
    }
    for (const original of element.children) {
      const spelled = SPELLINGS[original.name];
      const child = spelled && known.includes(spelled) ? { ...original, name: spelled } : original;
      if (child !== original) {
        problems.warn(
          original,
          original.name,
          `<${original.name}> is read as <${child.name}>, the spelling of the configuration reference`,
        );
      }
      if (!known.includes(child.name)) {
        const unknown = `unknown tag <${child.name}> in <${element.name}>`;
        const hint = unknownTagHint(child.name, known);
        if (strict) {
          problems.error(
            child,
            child.name,
            `${unknown}${
              hint || "; correct or remove it: an ignored tag would change what the rule does"
            }`,
          );
        } else problems.warn(child, child.name, `${unknown} (ignored)${hint}`);
      } else if (repeatable.includes(child.name)) {
        continue;
      } else if (this.#byTag.has(child.name)) {
        const first = this.#byTag.get(child.name) as RawElement;
        problems.error(
          child,
          child.name,
          `<${child.name}> appears twice in <${element.name}> (first at line ${first.line})`,
        );
      } else {
        this.#byTag.set(child.name, child);
      }
    }
  }

  /** The section element itself, if present. */
  get element(): RawElement | undefined {
    return this.#element;
  }

  /** The child element with this tag, if present. */
  child(tag: string): RawElement | undefined {
    return this.#byTag.get(tag);
  }

  /** Position for problems about the section as a whole. */
  get position(): Position {
    return this.#element ?? { line: 1, column: 1 };
  }

  /** The option's value: parsed from the file, or its default; problems recorded. */
  value<T>(spec: OptionSpec<T>, inherited?: string): T {
    const element = this.#byTag.get(spec.tag);
    const fallback = () => parseDefault(spec, inherited);
    if (!element) return fallback();
    if (element.children.length > 0) {
      this.#problems.error(element, spec.tag, `<${spec.tag}> must hold a value, not elements`);
      return fallback();
    }
    const parsed = spec.parse(element.text);
    if (parsed.ok) return parsed.value;
    this.#problems.error(element, spec.tag, `<${spec.tag}> ${parsed.message}`);
    return fallback();
  }

  /** True when the file sets the option. */
  has(tag: string): boolean {
    return this.#byTag.has(tag);
  }

  /**
   * A list option such as `<allowed_commands><command>…</command></allowed_commands>`:
   * its items parsed, or the inherited / default list when the tag is absent.
   */
  list<T>(spec: OptionSpec<T>, inherited?: readonly T[]): T[] {
    const item = spec.item ?? "item";
    const element = this.#byTag.get(spec.tag);
    if (!element) return inherited ? [...inherited] : defaultList(spec);
    const values: T[] = [];
    for (const child of element.children) {
      if (child.name !== item) {
        this.#problems.warn(
          child,
          child.name,
          `unknown tag <${child.name}> in <${spec.tag}> (ignored); expected <${item}>`,
        );
        continue;
      }
      const parsed = spec.parse(child.text);
      if (parsed.ok) values.push(parsed.value);
      else this.#problems.error(child, item, `<${item}> in <${spec.tag}> ${parsed.message}`);
    }
    if (values.length === 0 && !this.#problems.hasErrors) {
      this.#problems.warn(element, spec.tag, `<${spec.tag}> is empty: nothing will be allowed`);
    }
    return values;
  }
}

/** Parses an option's default through its own parser; a failure is a bug in the table. */
export function parseDefault<T>(spec: OptionSpec<T>, override?: string): T {
  const parsed = spec.parse(override ?? spec.default);
  if (!parsed.ok) throw new Error(`Bad default for <${spec.tag}>: ${parsed.message}`);
  return parsed.value;
}

/** The default of a list option, item by item. */
export function defaultList<T>(spec: OptionSpec<T>): T[] {
  return spec.default.split(",").map((text) => parseDefault(spec, text));
}

function short(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
