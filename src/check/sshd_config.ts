/**
 * sshd_config, read the way sshd reads it: case-insensitive keywords, the
 * first value wins, `Match` blocks until the next `Match`, `Include` files
 * spliced in place.
 * @module
 */

/** A directive and the Match block it sits in (undefined = global). */
export interface SshdDirective {
  readonly keyword: string;
  readonly args: readonly string[];
  readonly match?: string;
}

/** Parses sshd_config text; `include(pattern)` returns the texts an Include names. */
export function parseSshdConfig(
  text: string,
  include: (pattern: string) => string[] = () => [],
): SshdDirective[] {
  const out: SshdDirective[] = [];
  let match: string | undefined;
  const walk = (body: string, depth: number) => {
    for (const raw of body.split("\n")) {
      const line = raw.replace(/#.*/, "").trim();
      if (!line) continue;
      const [keyword = "", ...args] = line.split(/[\s=]+/).filter(Boolean);
      const key = keyword.toLowerCase();
      if (key === "include" && depth < 8) {
        for (const pattern of args) for (const text of include(pattern)) walk(text, depth + 1);
      } else if (key === "match") {
        match = args.join(" ").toLowerCase() === "all" ? undefined : args.join(" ");
      } else {
        out.push({ keyword: key, args, ...(match !== undefined ? { match } : {}) });
      }
    }
  };
  walk(text, 0);
  return out;
}

/** The first global value of a keyword. */
export function globalValue(
  config: readonly SshdDirective[],
  keyword: string,
): readonly string[] | undefined {
  return config.find((d) => d.keyword === keyword && d.match === undefined)?.args;
}

/** All global values of a repeatable keyword (Port, ListenAddress). */
export function globalValues(config: readonly SshdDirective[], keyword: string): string[] {
  return config.filter((d) => d.keyword === keyword && d.match === undefined).flatMap((d) =>
    d.args
  );
}

/** The Match block that forces `xferproxy reverse`, with its criteria and directives. */
export interface ProxyBlock {
  readonly match: string;
  /** Group names the block covers (`Match Group a,b`). */
  readonly groups: readonly string[];
  /** User names the block covers (`Match User a,b`). */
  readonly users: readonly string[];
  readonly directives: readonly SshdDirective[];
}

/** Finds the Match blocks whose ForceCommand runs `xferproxy reverse`. */
export function proxyBlocks(config: readonly SshdDirective[]): ProxyBlock[] {
  const matches = [
    ...new Set(
      config.filter((d) =>
        d.match !== undefined && d.keyword === "forcecommand" &&
        /xferproxy\S*\s+reverse\b/.test(d.args.join(" "))
      ).map((d) => d.match as string),
    ),
  ];
  return matches.map((match) => {
    const words = match.split(/\s+/);
    const listAfter = (criterion: string) => {
      const i = words.findIndex((w) => w.toLowerCase() === criterion);
      return i >= 0 ? (words[i + 1] ?? "").split(",").filter(Boolean) : [];
    };
    return {
      match,
      groups: listAfter("group"),
      users: listAfter("user"),
      directives: config.filter((d) => d.match === match),
    };
  });
}

/** A keyword's value inside a block, else the global one. */
export function effectiveValue(
  config: readonly SshdDirective[],
  block: ProxyBlock | undefined,
  keyword: string,
): string | undefined {
  const inBlock = block?.directives.find((d) => d.keyword === keyword)?.args.join(" ");
  return (inBlock ?? globalValue(config, keyword)?.join(" "))?.toLowerCase();
}

/**
 * The authorized_keys files sshd reads for a user (`AuthorizedKeysFile`,
 * default `.ssh/authorized_keys .ssh/authorized_keys2`), tokens expanded,
 * relative paths under the home directory.
 */
export function authorizedKeysPaths(
  config: readonly SshdDirective[],
  user: string,
  home: string,
): string[] {
  const patterns = globalValue(config, "authorizedkeysfile") ??
    [".ssh/authorized_keys", ".ssh/authorized_keys2"];
  return patterns.filter((p) => p.toLowerCase() !== "none").map((pattern) => {
    const path = pattern.replaceAll("%h", home).replaceAll("%u", user).replaceAll("%%", "%");
    return path.startsWith("/") ? path : `${home}/${path}`;
  });
}
