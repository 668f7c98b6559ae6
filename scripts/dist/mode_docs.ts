/**
 * The man page xferproxy(1) and the bash completion, both derived from the
 * table of modes (main.ts: each mode's name, summary and usage text) so they
 * cannot drift from `--help`. Pure: scripts/gen-mode-docs.ts writes them, and
 * make dist builds them into the packages every time.
 * @module
 */

/** What a row of the mode table says about itself. */
export interface ModeText {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
}

/** What the completion offers after a mode's name. */
export interface ModeWords {
  /** Words right after the mode (`check system`, `dnat add`, `forward user`). */
  readonly commands: readonly string[];
  /** Words after a command (`forward user add`). */
  readonly subcommands: ReadonlyMap<string, readonly string[]>;
  readonly options: readonly string[];
  /** Options that take a value, and what kind: files for PATH/FILE, directories for DIR. */
  readonly values: ReadonlyMap<string, "file" | "dir" | "other">;
}

/** The synopsis lines of a usage text (from `Usage:` to the first blank line), one per form. */
export function synopsis(mode: ModeText): string[] {
  const lines = mode.usage.split("\n");
  const end = lines.findIndex((l) => l.trim() === "");
  const forms: string[] = [];
  for (const line of lines.slice(0, end < 0 ? lines.length : end)) {
    const text = line.replace(/^Usage:/, "").trim();
    if (text.startsWith(`xferproxy ${mode.name}`) || forms.length === 0) forms.push(text);
    else forms[forms.length - 1] += ` ${text}`;
  }
  return forms;
}

const LITERAL = /^[a-z][a-z0-9-]*$/;

/** The completion words of one mode, read from its usage text. */
export function modeWords(mode: ModeText): ModeWords {
  const commands = new Set<string>();
  const subcommands = new Map<string, string[]>();
  for (const form of synopsis(mode)) {
    for (const alternative of form.split(" | ")) {
      const words = alternative.replace(`xferproxy ${mode.name}`, "").trim().split(/\s+/);
      const first = words[0] ?? "";
      const choices = /^\[([a-z|]+)\]$/.exec(first)?.[1]?.split("|") ??
        (LITERAL.test(first) ? [first] : []);
      choices.forEach((c) => commands.add(c));
      const second = words[1] ?? "";
      if (choices.length === 1 && LITERAL.test(second)) {
        const list = subcommands.get(first) ?? [];
        if (!list.includes(second)) list.push(second);
        subcommands.set(first, list);
      }
    }
  }
  // `<action>` forms list their actions in the body, one per line at two spaces.
  if (synopsis(mode).some((f) => f.includes("<action>"))) {
    for (const m of mode.usage.matchAll(/^ {2}([a-z][a-z0-9-]*)(?= {2,}| --| \[|$)/gm)) {
      commands.add(m[1] as string);
    }
  }
  const values = new Map<string, "file" | "dir" | "other">();
  const options = new Set<string>();
  // An option's value is the word after it in capitals (PATH, DIR, N) or a URL.
  const option = /(?<![\w-])(--[a-z][a-z0-9-]*)(?:[ =]([A-Z][A-Z_,.]*\b|\S*:\/\/\S*))?/g;
  for (const m of mode.usage.matchAll(option)) {
    const option = m[1] as string;
    options.add(option);
    const value = m[2];
    if (value) {
      values.set(option, /^(PATH|FILE)$/.test(value) ? "file" : value === "DIR" ? "dir" : "other");
    }
  }
  return {
    commands: [...commands],
    subcommands,
    options: [...options].sort(),
    values,
  };
}

/** A roff line of text: escapes, and every character beyond ASCII as \[uXXXX]. */
export function roff(text: string): string {
  const escaped = text.replace(/\\/g, "\\e").replace(/-/g, "\\-").replace(
    /[^\t\n\r -~]/g,
    (c) => `\\[u${(c.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, "0")}]`,
  );
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

/** The synopsis as the usage text breaks it, without "Usage: ". */
function usageLines(mode: ModeText): string[] {
  const lines = mode.usage.split("\n");
  const end = lines.findIndex((l) => l.trim() === "");
  return lines.slice(0, end < 0 ? lines.length : end).map((l) => l.slice("Usage: ".length));
}

function literalBlock(text: string): string[] {
  return [".nf", ...text.split("\n").map(roff), ".fi"];
}

/** xferproxy(1): every mode's synopsis and help text, and the overview's common options. */
export function manPage(
  modes: readonly ModeText[],
  overview: string,
  version: string,
  date: string,
): string {
  const [title = "", ...rest] = overview.split("\n");
  const description = title.replace(/^xferproxy - /, "");
  const foot = rest.join("\n").split(/\n(?=Common options:)/)[1] ?? "";
  const lines = [
    `.TH XFERPROXY 1 "${date}" "xferproxy ${version}" "User Commands"`,
    ".SH NAME",
    `xferproxy \\- ${roff(description)}`,
    ".SH SYNOPSIS",
    ".nf",
    ...modes.flatMap((m) => usageLines(m)).map((s) => roff(s)),
    ".fi",
    ".SH DESCRIPTION",
    "One executable; the first argument picks the mode:",
    ...literalBlock(modes.map((m) => m.summary).join("\n")),
    ".SH MODES",
    ...modes.flatMap((m) => [`.SS ${m.name}`, ...literalBlock(m.usage)]),
    ".SH COMMON OPTIONS",
    ...literalBlock(foot.trim()),
    ".SH FILES",
    ".TP",
    roff("/etc/xferproxy/aspera.conf"),
    "the configuration (IBM Aspera Proxy's aspera.conf format)",
    ".TP",
    roff("/var/lib/xferproxy"),
    "state: the DNAT registry, the balancer's shared state",
    ".TP",
    roff("/var/log/xferproxy/xferproxy.log"),
    "the sessions' log, when <log_directory> names this directory",
    ".TP",
    roff("/var/log/xferproxy/root/xferproxy.log"),
    "root's log (the DNAT service, calls through sudo, the forward daemon), which only root may write",
    ".TP",
    roff("/var/cache/xferproxy"),
    "the runtime the single file unpacks, shared read-only by every user",
    ".SH SEE ALSO",
    "sshd_config(5), sudoers(5), ssh(1), and /usr/share/doc/xferproxy/",
    "",
  ];
  return lines.join("\n");
}

function shellWords(words: readonly string[]): string {
  return words.join(" ");
}

/** The bash completion function for xferproxy. */
export function bashCompletion(modes: readonly ModeText[]): string {
  const names = modes.map((m) => m.name);
  const cases: string[] = [];
  const valueCases = new Map<string, string[]>();
  for (const mode of modes) {
    const words = modeWords(mode);
    const first = mode.name === "help" ? names : words.commands;
    const subs = [...words.subcommands].map(([command, list]) =>
      `        ${command}) [ "$COMP_CWORD" -eq 3 ] && sub="${shellWords(list)}" ;;`
    );
    cases.push(
      `    ${mode.name})`,
      `      first="${shellWords(first)}"`,
      `      options="${shellWords(words.options)}"`,
      ...(subs.length ? ["      case ${COMP_WORDS[2]} in", ...subs, "      esac"] : []),
      "      ;;",
    );
    for (const [option, kind] of words.values) {
      const list = valueCases.get(kind) ?? [];
      if (!list.includes(option)) list.push(option);
      valueCases.set(kind, list);
    }
  }
  const files = valueCases.get("file") ?? [];
  const dirs = valueCases.get("dir") ?? [];
  const others = valueCases.get("other") ?? [];
  return [
    "# bash completion for xferproxy(1). Generated from its table of modes by make dist.",
    "_xferproxy() {",
    "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}",
    '  local first="" options="" sub=""',
    "  COMPREPLY=()",
    '  if [ "$COMP_CWORD" -eq 1 ]; then',
    `    COMPREPLY=($(compgen -W "${shellWords(names)} --help" -- "$cur"))`,
    "    return",
    "  fi",
    "  case $prev in",
    ...(files.length
      ? [`    ${files.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`]
      : []),
    ...(dirs.length
      ? [`    ${dirs.join("|")}) COMPREPLY=($(compgen -d -- "$cur")); return ;;`]
      : []),
    ...(others.length ? [`    ${others.join("|")}) return ;;`] : []),
    "  esac",
    "  case ${COMP_WORDS[1]} in",
    ...cases,
    "  esac",
    '  if [ -n "$sub" ]; then',
    '    COMPREPLY=($(compgen -W "$sub" -- "$cur"))',
    '  elif [ "$COMP_CWORD" -eq 2 ] && [[ $cur != -* ]]; then',
    '    COMPREPLY=($(compgen -W "$first" -- "$cur"))',
    "  else",
    '    COMPREPLY=($(compgen -W "$options --help" -- "$cur"))',
    "  fi",
    "}",
    "complete -F _xferproxy xferproxy",
    "",
  ].join("\n");
}
