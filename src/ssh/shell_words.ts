/**
 * POSIX shell word splitting, as far as deciding whether a command string is
 * a plain command: the upstream sshd runs it through the user's shell, so
 * anything that shell would treat as syntax (`;`, `|`, `$(…)`, redirections,
 * newlines) must be caught here.
 * @module
 */

/** The words of a plain command, or why it is not one. */
export type SplitResult =
  | {
    readonly ok: true;
    readonly words: readonly string[];
    /**
     * Indexes of words the upstream shell may expand (an unquoted glob or brace) into a word that
     * starts with "-": one leading with "-" or with the expansion itself. A file a partner
     * uploaded could be named like an option.
     */
    readonly mayBecomeOptions: readonly number[];
  }
  | { readonly ok: false; readonly reason: string };

/** Characters that are shell syntax when unquoted. Globs (`*?[]`) and `~` only expand paths. */
const UNQUOTED_META = new Set([";", "&", "|", "<", ">", "(", ")", "$", "`", "\n", "\r"]);
/** Characters still active inside double quotes. */
const DOUBLE_QUOTED_META = new Set(["$", "`"]);
/** Unquoted, these make the shell replace the word with file names or several words. */
const EXPANDING = new Set(["*", "?", "[", "{"]);

/** Splits a command string into words, refusing shell syntax. */
export function splitShellWords(command: string): SplitResult {
  const words: string[] = [];
  const mayBecomeOptions: number[] = [];
  let word = "";
  let inWord = false;
  /** The word has an unquoted expansion; `leads`: one came before any other character. */
  let expands = false;
  let leads = false;
  const endWord = () => {
    if (inWord) {
      if (expands && (leads || word.startsWith("-"))) mayBecomeOptions.push(words.length);
      words.push(word);
    }
    word = "";
    inWord = false;
    expands = false;
    leads = false;
  };
  const fail = (reason: string): SplitResult => ({ ok: false, reason });
  for (let i = 0; i < command.length; i++) {
    const c = command[i] as string;
    if (c === "\u0000") return fail("it contains a NUL byte");
    if (c === " " || c === "\t") {
      endWord();
      continue;
    }
    inWord = true;
    if (c === "\\") {
      const next = command[i + 1];
      if (next === undefined) return fail("it ends with a backslash");
      if (next === "\n") return fail("it contains a newline");
      word += next;
      i++;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) return fail("it has an unterminated ' quote");
      word += command.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < command.length && command[j] !== '"'; j++) {
        const d = command[j] as string;
        if (DOUBLE_QUOTED_META.has(d)) {
          return fail(`it contains shell syntax ${JSON.stringify(d)} inside double quotes`);
        }
        if (d === "\\" && j + 1 < command.length && '"\\$`'.includes(command[j + 1] as string)) {
          word += command[j + 1];
          j++;
        } else {
          word += d;
        }
      }
      if (j >= command.length) return fail('it has an unterminated " quote');
      i = j;
    } else if (UNQUOTED_META.has(c)) {
      return fail(`it contains shell syntax ${JSON.stringify(c)}`);
    } else if (c === "#" && word === "") {
      return fail(`it contains a shell comment "#"`);
    } else {
      if (EXPANDING.has(c)) {
        leads ||= !expands && word === "";
        expands = true;
      }
      word += c;
    }
  }
  endWord();
  return { ok: true, words, mayBecomeOptions };
}
