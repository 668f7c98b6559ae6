/**
 * rsync on the internal server may only be the server side of a transfer
 * over ssh: `rsync --server [--sender] OPTIONS . PATHS`, with the options a
 * client sends (the list rsync's own rrsync keeps). Refused: `--daemon` and
 * `--config` (a daemon config's `pre-xfer exec` runs commands), `--log-file`
 * (writes anywhere), `-s` (the real arguments would arrive unchecked over
 * the protocol), batch files, devices, and anything not listed.
 * @module
 */

import { type OptionTable, scanOptions } from "./scan.ts";

const RSYNC: OptionTable = {
  flags: "ACDEHIJKLNORSUWXbcdgklmnopqrtuvxyz",
  // -e in server mode carries the protocol's capability letters (`-e.iLsfxCIvu`); -B and -@ a number.
  valued: "e@B",
  values: { "-e": /^\d*\.\w*$/, "-@": /^-?\d+$/, "-B": /^\d+[kKmMgG]?$/ },
  longFlags: [
    "--server",
    "--sender",
    "--append",
    "--copy-unsafe-links",
    "--delay-updates",
    "--delete",
    "--delete-after",
    "--delete-before",
    "--delete-delay",
    "--delete-during",
    "--delete-excluded",
    "--delete-missing-args",
    "--existing",
    "--fake-super",
    "--force",
    "--from0",
    "--fsync",
    "--fuzzy",
    "--group",
    "--hard-links",
    "--ignore-errors",
    "--ignore-existing",
    "--ignore-missing-args",
    "--ignore-times",
    "--inplace",
    "--links",
    "--list-only",
    "--mkpath",
    "--msgs2stderr",
    "--munge-links",
    "--new-compress",
    "--no-W",
    "--no-implied-dirs",
    "--no-msgs2stderr",
    "--no-r",
    "--no-relative",
    "--no-specials",
    "--numeric-ids",
    "--old-compress",
    "--one-file-system",
    "--open-noatime",
    "--owner",
    "--partial",
    "--perms",
    "--preallocate",
    "--recursive",
    "--remove-sent-files",
    "--remove-source-files",
    "--safe-links",
    "--size-only",
    "--specials",
    "--stats",
    "--super",
    "--times",
    "--use-qsort",
  ],
  longValued: [
    "--backup-dir",
    "--block-size",
    "--bwlimit",
    "--checksum-choice",
    "--checksum-seed",
    "--compare-dest",
    "--compress-choice",
    "--compress-level",
    "--compress-threads",
    "--copy-dest",
    "--debug",
    "--files-from",
    "--groupmap",
    "--iconv",
    "--info",
    "--link-dest",
    "--log-format",
    "--max-alloc",
    "--max-delete",
    "--max-size",
    "--min-size",
    "--modify-window",
    "--partial-dir",
    "--skip-compress",
    "--stderr",
    "--suffix",
    "--temp-dir",
    "--timeout",
    "--usermap",
  ],
  refused: {
    "--daemon": "a daemon's config can run commands (pre-xfer exec)",
    "--config": "a daemon's config can run commands (pre-xfer exec)",
    "--log-file": "it writes a file anywhere the account can",
    "--log-file-format": "it goes with --log-file",
    "--write-batch": "it writes a file anywhere the account can",
    "--only-write-batch": "it writes a file anywhere the account can",
    "--read-batch": "it replays a file instead of the transfer",
    "-s": "the arguments would arrive over the protocol, unchecked",
    "--secluded-args": "the arguments would arrive over the protocol, unchecked",
    "--protect-args": "the arguments would arrive over the protocol, unchecked",
    "--rsh": "it names a program to run",
    "--rsync-path": "it names a program to run",
    "--copy-devices": "it reads devices",
    "--write-devices": "it writes devices",
    "--no-munge-links": "it undoes --munge-links",
  },
};

/** Why `rsync ARGS` may not run upstream, or undefined when it may. */
export function checkRsync(args: readonly string[]): string | undefined {
  if (args[0] !== "--server") return "rsync may only run as a server (rsync --server …)";
  const dot = args.indexOf(".");
  if (dot < 0) return `rsync --server needs its "." argument`;
  const result = scanOptions(args.slice(0, dot), RSYNC);
  if (!result.ok) return `rsync ${result.reason}`;
  if (result.scanned.operands.length > 0) {
    return `rsync argument "${result.scanned.operands[0]}" comes before "."`;
  }
  // rsync parses options anywhere on its command line: a path must not look like one.
  const optionLike = args.slice(dot + 1).find((a) => a.startsWith("-"));
  if (optionLike !== undefined) return `rsync path "${optionLike}" starts with "-"`;
  return undefined;
}
