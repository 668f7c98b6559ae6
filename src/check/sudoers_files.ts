/**
 * The sudoers files sudo reads: /etc/sudoers and what it includes, in order
 * (`@include`/`#include` files, relative to the including file's directory;
 * `@includedir`/`#includedir` directories, their files in name order, skipping
 * names that contain a dot or end in `~`, as sudo does).
 * @module
 */

import type { CheckHost } from "./host.ts";
import { includedByDir, sudoersLines, type SudoersStatement } from "./sudoers.ts";

/** sudo's limit on nested includes. */
const MAX_DEPTH = 128;

/** What sudo reads, and what an included directory holds that sudo skips. */
export interface SudoersSources {
  /** The statements of every file sudo reads, in its order. */
  readonly statements: readonly SudoersStatement[];
  /** The files read. */
  readonly files: readonly string[];
  /** Files in an included directory that sudo skips, with their text. */
  readonly skipped: ReadonlyArray<{ readonly path: string; readonly text: string }>;
}

function resolve(path: string, from: string): string {
  if (path.startsWith("/")) return path;
  return `${from.slice(0, from.lastIndexOf("/")) || ""}/${path}`;
}

/** Reads the sudoers files from `main` (default /etc/sudoers) through the audited host. */
export async function loadSudoers(
  host: CheckHost,
  main = "/etc/sudoers",
): Promise<SudoersSources> {
  const statements: SudoersStatement[] = [];
  const files: string[] = [];
  const skipped: Array<{ path: string; text: string }> = [];
  const reading = new Set<string>();
  const readFile = async (path: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH || reading.has(path)) return;
    const text = await host.readText(path);
    if (text === undefined) return;
    reading.add(path);
    files.push(path);
    for (const line of sudoersLines(text)) {
      if (line.kind === "statement") {
        statements.push({ file: path, text: line.text });
      } else if (!line.dir) {
        await readFile(resolve(line.path, path), depth + 1);
      } else {
        const dir = resolve(line.path, path).replace(/\/+$/, "");
        for (const name of (await host.list(dir)).sort()) {
          const entry = `${dir}/${name}`;
          if ((await host.stat(entry))?.isDirectory !== false) continue;
          if (includedByDir(name)) await readFile(entry, depth + 1);
          else skipped.push({ path: entry, text: (await host.readText(entry)) ?? "" });
        }
      }
    }
    reading.delete(path);
  };
  await readFile(main, 0);
  return { statements, files, skipped };
}
