/**
 * scp on the internal server may only be the far end of a copy: `-t` (sink)
 * or `-f` (source) with the flags OpenSSH's scp sends (`-d -p -r -v`, and
 * `--` before a path that starts with "-"). Without `-t`/`-f` scp is a
 * client there, and `-o ProxyCommand=…` or `-S program` run commands.
 * (OpenSSH 9's scp uses SFTP unless `-O` is given: that is the sftp
 * subsystem, not this command.)
 * @module
 */

import { type OptionTable, scanOptions } from "./scan.ts";

const SCP: OptionTable = {
  flags: "dfprtv",
  valued: "",
  longFlags: [],
  longValued: [],
  refused: {
    "-o": "it sets ssh options such as ProxyCommand",
    "-S": "it names a program to run",
    "-F": "it names an ssh config file",
    "-J": "it makes scp connect onward",
    "-3": "it makes scp copy between two other hosts",
  },
};

/** Why `scp ARGS` may not run upstream, or undefined when it may. */
export function checkScp(args: readonly string[]): string | undefined {
  const result = scanOptions(args, SCP);
  if (!result.ok) return `scp ${result.reason} (only -t or -f with -d -p -r -v)`;
  const names = new Set(result.scanned.options.map((o) => o.name));
  if (names.has("-t") === names.has("-f")) {
    return "scp must be run with exactly one of -t or -f (the server side of a copy)";
  }
  if (result.scanned.operands.length === 0) return "scp needs a path";
  return undefined;
}
