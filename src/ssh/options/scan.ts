/**
 * One option scanner for every program the command policy knows: it walks
 * the words as getopt_long and popt would (options may follow operands, `--`
 * ends them) and accepts only what the program's table names. Unknown
 * options, abbreviations and values where none belong are refused: an
 * allow-list, because one forgotten option (`scp -S`, `rsync --daemon`) is a
 * command run on the internal server.
 * @module
 */

/** What a program accepts. Names are spelled as typed: `-t`, `--server`. */
export interface OptionTable {
  /** Single-letter options without a value; they may be clustered (`-rpt`). */
  readonly flags: string;
  /** Single-letter options with a value, attached (`-l100m`) or in the next word. */
  readonly valued: string;
  /** Long options without a value. */
  readonly longFlags: readonly string[];
  /** Long options with a value (`--mode=recv` or `--mode recv`). */
  readonly longValued: readonly string[];
  /** Options refused with a reason of their own (they are refused either way). */
  readonly refused?: Readonly<Record<string, string>>;
  /** Values an option must match, when the option is harmless only with some values. */
  readonly values?: Readonly<Record<string, RegExp>>;
}

/** The options and operands of an accepted command line. */
export interface Scanned {
  /** Every option seen, by name (`-t`, `--sender`), with its value if it has one. */
  readonly options: ReadonlyArray<{ readonly name: string; readonly value?: string }>;
  readonly operands: readonly string[];
}

/** Scans `args` (the words after the program); returns what was seen, or why it is refused. */
export function scanOptions(
  args: readonly string[],
  table: OptionTable,
): { ok: true; scanned: Scanned } | { ok: false; reason: string } {
  const options: Array<{ name: string; value?: string }> = [];
  const operands: string[] = [];
  const refuse = (name: string) => ({
    ok: false as const,
    reason: table.refused?.[name] !== undefined
      ? `option "${name}" is refused: ${table.refused[name]}`
      : `option "${name}" is not allowed`,
  });
  const badValue = (name: string, value: string) => {
    const pattern = table.values?.[name];
    return pattern !== undefined && !pattern.test(value);
  };
  for (let i = 0; i < args.length; i++) {
    const word = args[i] as string;
    if (word === "--") {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (!word.startsWith("-") || word === "-") {
      operands.push(word);
      continue;
    }
    if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = eq < 0 ? word : word.slice(0, eq);
      if (table.refused?.[name] !== undefined) return refuse(name);
      if (table.longFlags.includes(name) && eq < 0) {
        options.push({ name });
        continue;
      }
      if (!table.longValued.includes(name)) return refuse(name);
      const value = eq >= 0 ? word.slice(eq + 1) : args[++i];
      if (value === undefined) return { ok: false, reason: `option "${name}" needs a value` };
      if (badValue(name, value)) {
        return { ok: false, reason: `option "${name}" has a value not allowed here` };
      }
      options.push({ name, value });
      continue;
    }
    for (let j = 1; j < word.length; j++) {
      const name = `-${word[j]}`;
      if (table.refused?.[name] !== undefined) return refuse(name);
      if (table.flags.includes(word[j] as string)) {
        options.push({ name });
        continue;
      }
      if (!table.valued.includes(word[j] as string)) return refuse(name);
      const value = j + 1 < word.length ? word.slice(j + 1) : args[++i];
      if (value === undefined) return { ok: false, reason: `option "${name}" needs a value` };
      if (badValue(name, value)) {
        return { ok: false, reason: `option "${name}" has a value not allowed here` };
      }
      options.push({ name, value });
      break;
    }
  }
  return { ok: true, scanned: { options, operands } };
}
