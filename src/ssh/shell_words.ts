/**
 * Shell word splitting, as far as deciding whether a command string is a
 * plain command: the upstream sshd runs it through the internal account's
 * login shell (`shell -c COMMAND`), so anything that shell would treat as
 * syntax (`;`, `|`, `$(…)`, redirections, newlines) must be caught here.
 *
 * The words are split as POSIX sh does. The login shell may also be bash,
 * zsh, dash, tcsh or csh, and the command is sent upstream as the client
 * wrote it, so what those shells would read as other words is noted too
 * (`shellsDiffer`), for the policy to refuse. Refusing, not re-quoting: a
 * re-quoted command would have to keep the globs and `~` a client means the
 * shell to expand (`scp -f /data/*.txt`) while escaping the rest, and a
 * line break has no spelling csh reads; refusing sends what the client
 * sent, which real clients (scp's paths, rsync's backslash escapes, the
 * sftp subsystem) seldom make hold these constructs, and each but a line
 * break has a spelling all six read alike (`\!`, single quotes, an
 * absolute path). The differences, checked against the real shells by
 * tests/e2e/shell_words_test.ts:
 *
 * - csh and tcsh expand `!` from history even under `-c`, inside quotes too;
 *   only an unquoted `\!` is a plain `!` everywhere.
 * - Inside double quotes sh removes a backslash before `"` `\` `$` and a
 *   backquote; csh keeps every backslash there, so `"\" --daemon "\"` is one
 *   word to sh and three to csh (the attack of issue 19, item 7).
 * - csh reads `#` as a comment even inside a word (`a#b` is `a`).
 * - csh cannot hold a line break inside quotes.
 * - Braces expand in bash, zsh and csh (`x{}` is `x` in csh), never in dash.
 * - `~` expands at the start of a word everywhere, but `~+`, `~-`, `~1`
 *   differ, bash also expands it after `=` and `:` in a word like `a=~`, and
 *   only `~` and `~/…` mean the same home in all six.
 * - A word starting with `=` is a command path in zsh (`=ls`) and the
 *   directory stack in tcsh (`=0`).
 * - Globs (`*`, `?`, `[`) are kept: every shell replaces them with names of
 *   existing files or refuses to run (csh and zsh when nothing matches), so
 *   they never produce what a partner did not upload; a glob that could
 *   produce an option is refused (`mayBecomeOptions`). `^` counts as one: it
 *   negates a pattern under zsh's EXTENDED_GLOB.
 * - BSD csh hangs, running nothing, on a backslash followed later by a
 *   0xA0 byte (U+00A0, `à` …): safe, so not refused.
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

/** A split, and why some login shell would read other words, if one would. */
export interface ScannedCommand {
  readonly split: SplitResult;
  readonly shellsDiffer?: string;
}

/** Characters that are shell syntax when unquoted. Globs (`*?[]`) and `~` only expand paths. */
const UNQUOTED_META = new Set([";", "&", "|", "<", ">", "(", ")", "$", "`", "\n", "\r"]);
/** Characters still active inside double quotes. */
const DOUBLE_QUOTED_META = new Set(["$", "`"]);
/** Unquoted, these make the shell replace the word with file names or several words. */
const EXPANDING = new Set(["*", "?", "[", "{", "^"]);

/** Why the login shells would disagree; see the module comment. */
const DIFFER = {
  history: `it contains "!", which csh and tcsh expand from history (write \\! outside quotes)`,
  backslashInDouble:
    "it has a backslash inside double quotes, which csh and tcsh keep and sh removes (use single quotes)",
  lineBreakInQuotes: "it has a line break inside quotes, which csh and tcsh refuse",
  comment: `it contains "#", which starts a comment in csh and tcsh (quote it)`,
  brace: "it contains a brace, which bash, zsh and csh expand and dash does not (quote it)",
  tilde:
    `it has a "~" that bash, zsh and csh expand differently (quote it, or write ~/… or an absolute path)`,
  equals: `it has a word starting with "=", which zsh and tcsh expand (quote it)`,
} as const;

/** Splits a command string into words, refusing shell syntax. */
export function splitShellWords(command: string): SplitResult {
  return scanCommand(command).split;
}

/** Splits a command string as `splitShellWords` does, and notes where login shells disagree. */
export function scanCommand(command: string): ScannedCommand {
  const words: string[] = [];
  const mayBecomeOptions: number[] = [];
  let shellsDiffer: string | undefined;
  const differ = (why: string) => {
    shellsDiffer ??= why;
  };
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
  const fail = (reason: string): ScannedCommand => ({ split: { ok: false, reason } });
  for (let i = 0; i < command.length; i++) {
    const c = command[i] as string;
    if (c === "\u0000") return fail("it contains a NUL byte");
    if (c === " " || c === "\t") {
      endWord();
      continue;
    }
    const startsWord = !inWord;
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
      const quoted = command.slice(i + 1, end);
      if (quoted.includes("!")) differ(DIFFER.history);
      if (/[\n\r]/.test(quoted)) differ(DIFFER.lineBreakInQuotes);
      word += quoted;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < command.length && command[j] !== '"'; j++) {
        const d = command[j] as string;
        if (DOUBLE_QUOTED_META.has(d)) {
          return fail(`it contains shell syntax ${JSON.stringify(d)} inside double quotes`);
        }
        if (d === "!") differ(DIFFER.history);
        if (d === "\n" || d === "\r") differ(DIFFER.lineBreakInQuotes);
        if (d === "\\") differ(DIFFER.backslashInDouble);
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
      noteUnquoted(command, i, { startsWord, empty: word === "" }, differ);
      if (EXPANDING.has(c)) {
        leads ||= !expands && word === "";
        expands = true;
      }
      word += c;
    }
  }
  endWord();
  const split: SplitResult = { ok: true, words, mayBecomeOptions };
  return shellsDiffer === undefined ? { split } : { split, shellsDiffer };
}

/**
 * Notes an unquoted, unescaped character that some login shell reads differently. `startsWord`:
 * it is the word's first character; `empty`: nothing came before it but empty quotes, if any.
 */
function noteUnquoted(
  command: string,
  i: number,
  at: { readonly startsWord: boolean; readonly empty: boolean },
  differ: (why: string) => void,
): void {
  const c = command[i];
  const next = command[i + 1];
  if (c === "!") differ(DIFFER.history);
  else if (c === "#") differ(DIFFER.comment);
  else if (c === "{" || c === "}") differ(DIFFER.brace);
  else if (c === "=" && at.empty) differ(DIFFER.equals);
  else if (c === "~") {
    const home = at.startsWord && (next === undefined || " \t/".includes(next));
    const afterAssign = "=:".includes(command[i - 1] as string);
    if ((at.empty && !home) || (!at.empty && afterAssign)) differ(DIFFER.tilde);
  }
}
