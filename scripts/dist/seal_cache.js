/**
 * Seals Deno's cache databases for readers that may not write them (part of the single file's
 * payload; its header runs it as root once, after unpacking). Usage: seal_cache.js DIR
 *
 * DIR holds copies of root's cache databases (with their -wal files). Each is opened, analyzed,
 * its write-ahead log folded into it and truncated, and the process exits without closing, so
 * SQLite leaves an empty -wal and a valid -shm behind. Deno then opens the database read-only
 * and uses it. Otherwise its opening statements would have to write (recover a log that holds
 * frames; PRAGMA optimize analyzing tables without statistics), and Deno would fall back to
 * caches in memory, silently. The header makes DIR and its files read-only; the dist test checks
 * that Deno opens them.
 */
import { DatabaseSync } from "node:sqlite";

const [dir] = Deno.args;
if (!dir) throw new Error("usage: seal_cache.js DIR");
const open = [];
for (const entry of Deno.readDirSync(dir)) {
  if (!entry.isFile || /-(wal|shm|journal)$/.test(entry.name)) continue;
  const db = new DatabaseSync(`${dir}/${entry.name}`);
  db.prepare("PRAGMA journal_mode=WAL").get();
  db.exec("ANALYZE");
  db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get();
  db.prepare("SELECT count(*) FROM sqlite_master").get();
  open.push(db);
}
// Closing the last connection would delete the -wal and -shm files the readers need.
Deno.exit(open.length > 0 ? 0 : 1);
