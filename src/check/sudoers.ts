/**
 * sudoers, read the way sudo reads it (sudoers(5)), as far as the proxy cares:
 * the rule that lets the proxy group run this executable's `dnat` as root
 * without a password, raw netfilter entries that hand out root, and
 * `requiretty`, which refuses the sessions' sudo call (no tty for scp, sftp
 * or ascp). Pure: sudoers_files.ts reads the files and follows the includes.
 * @module
 */

/** One logical line of a sudoers file: an include directive or a statement. */
export type SudoersLine =
  | { readonly kind: "include"; readonly path: string; readonly dir: boolean }
  | { readonly kind: "statement"; readonly text: string };

/** A statement and the file it came from, in the order sudo reads them. */
export interface SudoersStatement {
  readonly file: string;
  readonly text: string;
}

/**
 * The logical lines of one file: continuation lines joined, comments dropped
 * (`#` starts one unless it begins `#include`/`#includedir` or a uid/gid such as `#0`).
 */
export function sudoersLines(text: string): SudoersLine[] {
  const out: SudoersLine[] = [];
  for (const raw of text.replace(/\\\r?\n/g, " ").split("\n")) {
    const include = /^\s*[@#](include|includedir)\s+(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*$/.exec(raw);
    if (include) {
      const path = (include[2] ?? include[3] ?? "").replace(/\\(.)/g, "$1");
      out.push({ kind: "include", path, dir: include[1] === "includedir" });
      continue;
    }
    const line = raw.replace(/(^|[^\\])#(?!\d).*$/, "$1").trim();
    if (line) out.push({ kind: "statement", text: line });
  }
  return out;
}

/** Whether sudo reads a file an `@includedir` lists (names with a dot or ending in `~` are skipped). */
export function includedByDir(name: string): boolean {
  return !name.includes(".") && !name.endsWith("~");
}

/** What the sessions' sudo call needs: `%group ALL=(root) NOPASSWD: <executable> dnat *`. */
export interface WantedDnatRule {
  /** The executable sessions run (and so name to sudo). */
  readonly executable: string;
  /** The groups of the proxy users: each needs the rule. */
  readonly groups: readonly string[];
  /** Proxy users named one by one (sshd `Match User`), with the groups each is in. */
  readonly users?: ReadonlyMap<string, readonly string[]>;
}

/** A command a user specification grants, with everything that applies to it. */
export interface SudoersGrant {
  readonly file: string;
  /** The statement it comes from. */
  readonly line: string;
  /** The user list, aliases expanded (`%group`, `name`, `ALL`; a leading `!` negates). */
  readonly users: readonly string[];
  /** Runas users, aliases expanded; undefined when none is given (sudo's default: root). */
  readonly runas: readonly string[] | undefined;
  readonly nopasswd: boolean;
  /** `!` before the command: the grant denies it. */
  readonly negated: boolean;
  /** The command and its arguments, whitespace normalized, any digest dropped. */
  readonly command: string;
}

/** What the sudoers files allow, as far as the proxy cares. */
export interface SudoersFacts {
  readonly grants: readonly SudoersGrant[];
  /** For each wanted group (`%name`) or user: the grant that lets it run the helper, if any. */
  readonly dnat: ReadonlyMap<string, SudoersGrant | undefined>;
  /** Grants of `… xferproxy … dnat …` that do not count (path, group, runas, password, negation). */
  readonly nearMisses: readonly SudoersGrant[];
  /** NOPASSWD grants of iptables/ip6tables/iptables-restore/nft. */
  readonly rawEntries: readonly SudoersGrant[];
  /** `Defaults` lines that turn requiretty on, and those that turn it off for someone. */
  readonly requiretty: { readonly on: readonly string[]; readonly off: readonly string[] };
}

const RAW = /(^|\/)(ip6?tables(-restore|-legacy|-nft)?|nft)$/;
const ALIAS = /^(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+(.*)$/;
const ALIAS_NAME = /^[A-Z][A-Z0-9_]*$/;
const TAG = /^(NO)?(PASSWD|EXEC|SETENV|LOG_INPUT|LOG_OUTPUT|MAIL|FOLLOW|INTERCEPT):\s*/;
const OPTION = /^(CWD|CHROOT|ROLE|TYPE|TIMEOUT|NOTBEFORE|NOTAFTER|APPARMOR_PROFILE)=\S+\s*/;

/** Splits on commas outside parentheses; `\,` stays a comma inside the item. */
function splitList(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "\\" && i + 1 < text.length) {
      current += c + text[i + 1];
      i++;
    } else if (c === "(") {
      depth++;
      current += c;
    } else if (c === ")") {
      depth--;
      current += c;
    } else if (c === "," && depth === 0) {
      items.push(current.trim());
      current = "";
    } else current += c;
  }
  items.push(current.trim());
  return items.filter(Boolean);
}

type Aliases = Record<"user" | "runas" | "cmnd", Map<string, string[]>>;

/** Expands aliases in a list (recursively, a `!` in front of an alias negates each member). */
function expand(items: readonly string[], aliases: Map<string, string[]>, depth = 0): string[] {
  return items.flatMap((item) => {
    const negated = item.startsWith("!");
    const name = item.replace(/^!+\s*/, "");
    const members = aliases.get(name);
    if (!members || depth > 16) return [item];
    return expand(members, aliases, depth + 1).map((m) =>
      negated ? (m.startsWith("!") ? m.slice(1) : `!${m}`) : m
    );
  });
}

/** The command of a Cmnd: digest dropped, whitespace normalized. */
function normalizeCommand(text: string): string {
  return text.replace(/^(sha224|sha256|sha384|sha512):\S+\s+/, "").trim().split(/\s+/).join(" ");
}

/** Reads one user specification into grants: runas and tags carry over to the commands that follow. */
function userSpec(statement: SudoersStatement, aliases: Aliases): SudoersGrant[] {
  const equals = statement.text.indexOf("=");
  if (equals < 0) return [];
  const left = statement.text.slice(0, equals).replace(/\s*,\s*/g, ",").trim().split(/\s+/);
  if (left.length < 2) return [];
  const users = expand(splitList(left[0] as string), aliases.user);
  const grants: SudoersGrant[] = [];
  let runas: readonly string[] | undefined;
  let nopasswd = false;
  for (let spec of splitList(statement.text.slice(equals + 1))) {
    const runasMatch = /^\(([^)]*)\)\s*/.exec(spec);
    if (runasMatch) {
      const runasUsers = (runasMatch[1] as string).split(":")[0]?.trim() ?? "";
      // "(:group)" keeps the invoking user: no runas user is root.
      runas = expand(splitList(runasUsers), aliases.runas);
      spec = spec.slice(runasMatch[0].length);
    }
    for (;;) {
      const tag = TAG.exec(spec) ?? OPTION.exec(spec);
      if (!tag) break;
      if (tag[2] === "PASSWD") nopasswd = tag[1] === "NO";
      spec = spec.slice(tag[0].length);
    }
    for (const item of expand([spec], aliases.cmnd)) {
      const negated = item.startsWith("!");
      grants.push({
        file: statement.file,
        line: statement.text,
        users,
        runas,
        nopasswd,
        negated,
        command: normalizeCommand(item.replace(/^!+\s*/, "")),
      });
    }
  }
  return grants;
}

function aliasDefinitions(kind: string, body: string, aliases: Aliases): void {
  const target = kind === "User_Alias"
    ? aliases.user
    : kind === "Runas_Alias"
    ? aliases.runas
    : kind === "Host_Alias"
    ? undefined
    : aliases.cmnd;
  // NAME = a, b : NAME2 = c
  for (const definition of body.split(/\s*:\s*(?=[A-Z][A-Z0-9_]*\s*=)/)) {
    const [name = "", ...rest] = definition.split("=");
    if (target && ALIAS_NAME.test(name.trim())) target.set(name.trim(), splitList(rest.join("=")));
  }
}

/** Whether a grant's runas list (or sudo's default) includes root. */
function runsAsRoot(grant: SudoersGrant): boolean {
  if (grant.runas === undefined) return true;
  if (grant.runas.some((r) => r.startsWith("!") && ["root", "#0", "ALL"].includes(r.slice(1)))) {
    return false;
  }
  return grant.runas.some((r) => r === "root" || r === "#0" || r === "ALL");
}

/** The grants whose user list names `who` (`%group` or a user name), not negated. */
function names(grant: SudoersGrant, who: readonly string[]): boolean {
  if (grant.users.some((u) => u.startsWith("!") && who.includes(u.slice(1)))) return false;
  return grant.users.some((u) => who.includes(u));
}

/**
 * Analyses the statements of every file sudo reads, in order. For each wanted group
 * and user the last grant of the helper's command decides, as in sudo: a later
 * `!command` or `PASSWD:` grant takes the rule away.
 */
export function analyzeSudoers(
  statements: readonly SudoersStatement[],
  wanted: WantedDnatRule,
): SudoersFacts {
  const aliases: Aliases = { user: new Map(), runas: new Map(), cmnd: new Map() };
  const grants: SudoersGrant[] = [];
  const requiretty = { on: [] as string[], off: [] as string[] };
  for (const statement of statements) {
    const defaults = /^Defaults(?:[:@!>]\S+)?\s+(.*)$/.exec(statement.text);
    if (defaults) {
      const options = (defaults[1] as string).split(",").map((o) => o.trim());
      if (options.includes("requiretty")) requiretty.on.push(statement.text);
      if (options.includes("!requiretty")) requiretty.off.push(statement.text);
      continue;
    }
    const alias = ALIAS.exec(statement.text);
    if (alias) {
      aliasDefinitions(alias[1] as string, alias[2] as string, aliases);
      continue;
    }
    grants.push(...userSpec(statement, aliases));
  }
  const helper = `${wanted.executable} dnat *`;
  const principals = new Map<string, string[]>();
  for (const group of wanted.groups) principals.set(`%${group}`, [`%${group}`]);
  for (const [user, groups] of wanted.users ?? new Map<string, readonly string[]>()) {
    principals.set(user, [user, ...groups.map((g) => `%${g}`)]);
  }
  const dnat = new Map<string, SudoersGrant | undefined>();
  for (const [principal, who] of principals) {
    const last = grants.filter((g) => g.command === helper && names(g, who)).at(-1);
    dnat.set(
      principal,
      last && !last.negated && last.nopasswd && runsAsRoot(last) ? last : undefined,
    );
  }
  const counted = new Set(dnat.values());
  const nearMisses = grants.filter((g) =>
    !counted.has(g) && /xferproxy/.test(g.command) && /(^|\s)dnat(\s|$)/.test(g.command)
  );
  const rawEntries = grants.filter((g) =>
    g.nopasswd && !g.negated && RAW.test(g.command.split(" ")[0] ?? "") &&
    !/xferproxy/.test(g.command)
  );
  return { grants, dnat, nearMisses, rawEntries, requiretty };
}

/** Why a grant of `… xferproxy … dnat …` does not give `who` the helper, in a few words. */
export function missReason(
  grant: SudoersGrant,
  who: readonly string[],
  executable: string,
): string {
  const [path, ...args] = grant.command.split(" ");
  if (path !== executable) return `it names ${path}, sessions run ${executable}`;
  if (args.join(" ") !== "dnat *") return `its arguments are "${args.join(" ")}", not "dnat *"`;
  if (!names(grant, who)) return `it is for ${grant.users.join(",")}, not ${who[0]}`;
  if (grant.negated) return "it denies the command";
  if (!runsAsRoot(grant)) return "it does not run the command as root";
  if (!grant.nopasswd) return "it asks for a password";
  return "a later rule overrides it";
}
