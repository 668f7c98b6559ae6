/**
 * `xferproxy help [mode]` and `xferproxy version`: the two modes that only
 * print. The overview lists the modes of main.ts's table, so it cannot
 * miss one.
 * @module
 */

import type { ModeCommand, ModeEntry } from "./command.ts";
import { parseStrict, UsageError } from "./parse.ts";
import { EXIT } from "./exit.ts";
import { VERSION } from "../version.ts";

const HEAD = `xferproxy - open DMZ proxy for SSH-negotiated high-speed (FASP) transfers

Usage: xferproxy <mode> [options]

Modes:`;

const FOOT = `Common options:
  --config PATH   config file (default: $XFERPROXY_CONFIG, else /etc/xferproxy/aspera.conf;
                  reverse mode and sudo calls never read XFERPROXY_CONFIG)
  -h, --help      help for the mode

Exit status: 0 success, 1 failure or problems found, 2 usage error.
Docs: README.md and docs/ (docs/configuration.md for every option).`;

/** The overview: every mode's summary. */
export function overview(modes: readonly ModeEntry[]): string {
  return [HEAD, ...modes.map((m) => m.summary), "", FOOT].join("\n");
}

/** `help`'s argument: the mode to explain, or none for the overview. */
export interface HelpArgs {
  readonly topic?: string;
}

/** The help mode over a table of modes (given late: the table holds this mode too). */
export function helpMode(modes: () => readonly ModeEntry[]): ModeCommand<HelpArgs, void> {
  return {
    name: "help",
    summary: `  help       print this help, or "help <mode>" for one mode`,
    usage: `Usage: xferproxy help [mode]

Prints the overview, or the help of one mode.`,
    parse(args) {
      const [topic, extra] = args;
      if (topic === undefined) return {};
      if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`, "help");
      const names = modes().map((m) => m.name);
      if (!names.includes(topic)) {
        throw new UsageError(`no help for unknown mode "${topic}"; modes: ${names.join(", ")}`);
      }
      return { topic };
    },
    needs: () => ({}),
    run(args, _platform, context) {
      const mode = modes().find((m) => m.name === args.topic);
      context.output.out((mode ? mode.usage : overview(modes())) + "\n");
      return Promise.resolve(EXIT.ok);
    },
  };
}

/** The version mode. */
export const versionMode: ModeCommand<Record<never, never>, void> = {
  name: "version",
  summary: "  version    print the version",
  usage: `Usage: xferproxy version

Prints the xferproxy version and the Deno runtime it runs on.`,
  parse(args) {
    parseStrict(args, "version", {}, false);
    return {};
  },
  needs: () => ({}),
  run(_args, _platform, context) {
    context.output.out(`xferproxy ${VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8})\n`);
    return Promise.resolve(EXIT.ok);
  },
};
