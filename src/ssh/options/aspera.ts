/**
 * Aspera's programs on the internal server: ascp and ascp4 with the options
 * of a transfer (from IBM's published ascp/ascp4 command references), async
 * with those of a sync session, and ascmd (the remote browsing the GUI and
 * CLI use) with no arguments at all. Refused: options that name a key, an
 * alternative config, a log directory, a program, or a persistent command
 * session, and anything not listed. `*` in <allowed_commands> lifts this.
 * @module
 */

import { type OptionTable, scanOptions } from "./scan.ts";

const REFUSED = {
  "-i": "it names a private key for an onward connection",
  "-f": "it names another config file",
  "-L": "it writes logs to a directory of the client's choice",
  "-R": "it writes logs to a directory of the client's choice",
  "-S": "it names a program to run",
  "--keepalive": "it opens a persistent session that reads commands",
  "--proxy": "it sends the transfer through another proxy",
  "--file-manifest-path": "it writes a file anywhere the account can",
} as const;

/** ascp and ascp4. */
const ASCP: OptionTable = {
  flags: "ATpqdDv",
  valued: "lmkOZgGcCuENXW@P",
  longFlags: [
    "--remove-after-transfer",
    "--remove-empty-directories",
    "--remove-empty-source-directory",
    "--skip-special-files",
    "--preserve-access-time",
    "--preserve-modification-time",
    "--preserve-creation-time",
    "--preserve-times",
    "--preserve-file-owner-uid",
    "--preserve-file-owner-gid",
    "--save-before-overwrite",
    "--apply-local-docroot",
    "--delete-before-transfer",
    "--precalculate-job-size",
    "--ignore-host-key",
  ],
  longValued: [
    "--mode",
    "--user",
    "--host",
    "--tags",
    "--tags64",
    "--overwrite",
    "--policy",
    "--multi-session",
    "--multi-session-threshold",
    "--src-base",
    "--src-base64",
    "--partial-file-suffix",
    "--file-crypt",
    "--file-checksum",
    "--file-manifest",
    "--file-list",
    "--file-pair-list",
    "--move-after-transfer",
    "--exclude-newer-than",
    "--exclude-older-than",
    "--retry-timeout",
    "--symbolic-links",
    "--preserve-acls",
    "--preserve-xattrs",
    "--remote-preserve-acls",
    "--remote-preserve-xattrs",
    "--source-prefix",
    "--source-prefix64",
    "--check-sshfp",
    "--compare",
    "--dest64",
    "--read-threads",
    "--write-threads",
    "--chunk-size",
    "--memory",
  ],
  values: { "-P": /^\d{1,5}$/ },
  refused: REFUSED,
};

/** async (Aspera Sync). */
const ASYNC: OptionTable = {
  flags: "tqvD",
  valued: "NdrKlacuoPCXEIW",
  longFlags: [
    "--preserve-access-time",
    "--preserve-modification-time",
    "--preserve-creation-time",
    "--preserve-uid",
    "--preserve-gid",
    "--preserve-acls",
    "--preserve-xattrs",
    "--no-preserve-root-attrs",
    "--delete-delay",
    "--ignore-delete",
    "--dedup",
    "--remote-preserve-acls",
    "--skip-special-files",
    "--cooloff",
    "--scan-threads",
    "--transfer-threads",
    "--create-dir",
    "--no-log",
  ],
  longValued: [
    "--name",
    "--direction",
    "--local-dir",
    "--remote-dir",
    "--user",
    "--host",
    "--tags",
    "--tags64",
    "--exclude",
    "--include",
    "--filter",
    "--pending-max",
    "--write-uid",
    "--write-gid",
    "--store",
    "--overwrite",
    "--compare",
    "--checksum",
    "--symbolic-links",
    "--remote-store",
    "--cookie",
    "--cipher",
    "--apply-local-docroot",
    "--sharing-mode",
  ],
  values: { "-P": /^\d{1,5}$/ },
  refused: { ...REFUSED, "--keep-alive": "it opens a persistent session that reads commands" },
};

/** Why `ascp ARGS` / `ascp4 ARGS` may not run upstream, or undefined when it may. */
export function checkAscp(program: string, args: readonly string[]): string | undefined {
  const result = scanOptions(args, ASCP);
  return result.ok ? undefined : `${program} ${result.reason}`;
}

/** Why `async ARGS` may not run upstream, or undefined when it may. */
export function checkAsync(args: readonly string[]): string | undefined {
  const result = scanOptions(args, ASYNC);
  return result.ok ? undefined : `async ${result.reason}`;
}

/** ascmd speaks its protocol on stdin/stdout; it takes no arguments from a client. */
export function checkAscmd(args: readonly string[]): string | undefined {
  return args.length === 0 ? undefined : `ascmd takes no arguments, got "${args[0]}"`;
}
