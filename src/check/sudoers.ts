/**
 * sudoers lines that matter to the proxy: the `xferproxy dnat` entry it
 * needs, and raw netfilter entries that hand out root.
 * @module
 */

/** What the sudoers files allow, as far as the proxy cares. */
export interface SudoersFacts {
  /** Lines allowing `… xferproxy dnat …` without a password. */
  readonly dnatEntries: string[];
  /** Lines giving NOPASSWD to iptables/ip6tables/iptables-restore/nft. */
  readonly rawEntries: string[];
}

const RAW = /(^|\/)(ip6?tables(-restore|-legacy|-nft)?|nft)$/;

/** Scans sudoers texts (comments and Defaults lines ignored). */
export function analyzeSudoers(texts: readonly string[]): SudoersFacts {
  const dnatEntries: string[] = [];
  const rawEntries: string[] = [];
  for (const text of texts) {
    for (const raw of text.replace(/\\\n/g, " ").split("\n")) {
      const line = raw.replace(/#.*/, "").trim();
      if (!line || line.startsWith("Defaults") || !line.includes("NOPASSWD:")) continue;
      const commands = line.slice(line.indexOf("NOPASSWD:") + "NOPASSWD:".length).split(",").map((
        c,
      ) => c.trim());
      if (commands.some((c) => /xferproxy\s+dnat(\s|$)/.test(c))) dnatEntries.push(line);
      if (commands.some((c) => RAW.test(c.split(/\s+/)[0] ?? "") && !/xferproxy/.test(c))) {
        rawEntries.push(line);
      }
    }
  }
  return { dnatEntries, rawEntries };
}
