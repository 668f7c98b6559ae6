/**
 * sudoers lines that matter to the proxy: the `xferproxy dnat` entry it
 * needs, raw netfilter entries that hand out root, and `requiretty`, which
 * refuses the sessions' sudo call (it has no tty for scp, sftp or ascp).
 * @module
 */

/** What the sudoers files allow, as far as the proxy cares. */
export interface SudoersFacts {
  /** Lines allowing `… xferproxy dnat …` without a password. */
  readonly dnatEntries: string[];
  /** Lines giving NOPASSWD to iptables/ip6tables/iptables-restore/nft. */
  readonly rawEntries: string[];
  /** `Defaults` lines that turn requiretty on, and those that turn it off for someone. */
  readonly requiretty: { readonly on: string[]; readonly off: string[] };
}

const RAW = /(^|\/)(ip6?tables(-restore|-legacy|-nft)?|nft)$/;

/** Scans sudoers texts (comments and Defaults lines ignored). */
export function analyzeSudoers(texts: readonly string[]): SudoersFacts {
  const dnatEntries: string[] = [];
  const rawEntries: string[] = [];
  const requiretty = { on: [] as string[], off: [] as string[] };
  for (const text of texts) {
    for (const raw of text.replace(/\\\n/g, " ").split("\n")) {
      const line = raw.replace(/#.*/, "").trim();
      const defaults = /^Defaults(?:[:@!>]\S+)?\s+(.*)$/.exec(line);
      if (defaults) {
        const options = (defaults[1] as string).split(",").map((o) => o.trim());
        if (options.includes("requiretty")) requiretty.on.push(line);
        if (options.includes("!requiretty")) requiretty.off.push(line);
        continue;
      }
      if (!line || !line.includes("NOPASSWD:")) continue;
      const commands = line.slice(line.indexOf("NOPASSWD:") + "NOPASSWD:".length).split(",").map((
        c,
      ) => c.trim());
      if (commands.some((c) => /xferproxy\s+dnat(\s|$)/.test(c))) dnatEntries.push(line);
      if (commands.some((c) => RAW.test(c.split(/\s+/)[0] ?? "") && !/xferproxy/.test(c))) {
        rawEntries.push(line);
      }
    }
  }
  return { dnatEntries, rawEntries, requiretty };
}
