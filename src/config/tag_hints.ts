/**
 * What to tell someone about a tag a section does not know: where it belongs,
 * that it belongs to an Aspera transfer server, or which known tag it is a
 * typo of. Derived from the spec tables, so a new option gets its hints too.
 * @module
 */

import { PROXY, RPROXY, RULE, RULE_DEFAULTS_IN_RPROXY, SERVER, STRUCTURE } from "./spec.ts";

/**
 * Where an option found in the wrong section really belongs. Tags two
 * sections share (`enabled`) get none: the hint would be a guess.
 */
const HOME_OF: Readonly<Record<string, string>> = (() => {
  const sections: Array<[string, readonly string[]]> = [
    ["<server>", [...Object.keys(SERVER), ...STRUCTURE.server]],
    ["<proxy>", Object.keys(PROXY)],
    ["<rproxy>", [...Object.keys(RPROXY), ...STRUCTURE.rproxy]],
    ["<rule>", [...Object.keys(RULE), ...STRUCTURE.rule]],
  ];
  const homes = new Map<string, string[]>();
  for (const [section, tags] of sections) {
    for (const tag of tags) homes.set(tag, [...(homes.get(tag) ?? []), section]);
  }
  for (const tag of RULE_DEFAULTS_IN_RPROXY) homes.set(tag, ["<rule> or <rproxy>"]);
  return Object.fromEntries(
    [...homes].filter(([, places]) => places.length === 1).map(([tag, places]) => [
      tag,
      places[0] as string,
    ]),
  );
})();

/** Other spellings the Aspera documents use, read as the tag they mean. */
export const SPELLINGS: Readonly<Record<string, string>> = {
  // The troubleshooting section writes it this way; the configuration tables as src_port_filtering.
  source_port_filtering: "src_port_filtering",
};

/**
 * Tags the Aspera documents name that belong to an Aspera transfer server,
 * not to a proxy: what to do instead, for the warning.
 */
export const ELSEWHERE: Readonly<Record<string, string>> = Object.fromEntries(
  [
    "file_system",
    "access",
    "paths",
    "path",
    "absolute",
    "read_allowed",
    "write_allowed",
    "dir_allowed",
  ]
    .map((tag) => [
      tag,
      "it sets an Aspera server's docroot; xferproxy serves no files: set it in the internal server's aspera.conf",
    ]),
);

/**
 * The rest of the sentence "unknown tag <x> in <section>…" that helps most:
 * where the tag belongs, that an Aspera server reads it, or which of the
 * section's own tags it looks like a typo of (`; did you mean <squash_user>?`).
 * Empty when there is nothing useful to say.
 */
export function unknownTagHint(tag: string, known: readonly string[]): string {
  const home = HOME_OF[tag];
  if (home) return `; it belongs in ${home}`;
  const elsewhere = ELSEWHERE[tag];
  if (elsewhere) return `: ${elsewhere}`;
  const near = nearestTags(tag, known);
  return near.length > 0 ? `; did you mean ${near.map((t) => `<${t}>`).join(" or ")}?` : "";
}

/**
 * The known tags closest to `tag` when it looks like a typo of them: case and
 * `-` for `_` aside, at most one edit (a letter added, dropped, changed or two
 * swapped) for names of up to 4 letters and two for longer ones; every tag at
 * the smallest distance, so a tie is offered, never guessed.
 */
export function nearestTags(tag: string, known: readonly string[]): string[] {
  const wanted = normalize(tag);
  let best: string[] = [];
  let bestDistance = wanted.length <= 4 ? 1 : 2;
  for (const candidate of new Set(known)) {
    const distance = editDistance(wanted, normalize(candidate));
    if (distance < bestDistance) [best, bestDistance] = [[candidate], distance];
    else if (distance === bestDistance) best.push(candidate);
  }
  return best;
}

function normalize(tag: string): string {
  return tag.toLowerCase().replaceAll("-", "_");
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  const at = (i: number, j: number) => (rows[i] as number[])[j] as number;
  for (let j = 0; j <= b.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, at(i - 2, j - 2) + 1);
      }
      (rows[i] as number[])[j] = d;
    }
  }
  return at(a.length, b.length);
}
