/**
 * argv → the mode to run. Pure: no I/O, no environment. Each mode parses its
 * own arguments (its `command.ts`); this file picks the mode and holds the
 * helpers they share.
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UserError } from "../errors.ts";
import { EXIT } from "./exit.ts";
import type { Invocation, ModeEntry } from "./command.ts";

/** A command line that cannot be run; `helpFor` names the mode whose help to point at. */
export class UsageError extends UserError {
  readonly helpFor: string | undefined;
  constructor(message: string, helpFor?: string) {
    super(message, { exitCode: EXIT.usage });
    this.helpFor = helpFor;
  }

  /** The message and where to read more. */
  override get userMessage(): string {
    return `${this.message} (${usageHint(this.helpFor)})`;
  }
}

/** Where to read more after a usage error. */
export function usageHint(mode?: string): string {
  return mode ? `Try "xferproxy ${mode} --help".` : `Try "xferproxy --help".`;
}

/**
 * Picks the mode from `xferproxy <mode> [options]` (argv without the program name) and parses
 * its arguments. `-h`/`--help` anywhere asks for the mode's help; none for the overview. No
 * mode at all prints the overview on stderr and exits 2.
 * @throws {UsageError} for an unknown mode, option or argument
 */
export function parseCommandLine(modes: readonly ModeEntry[], argv: readonly string[]): Invocation {
  const find = (name: string) => modes.find((m) => m.name === name);
  const help = find("help");
  const version = find("version");
  if (!help || !version) throw new TypeError("The mode table needs help and version");
  const [first, ...rest] = argv;
  if (first === undefined) return missingMode(help.prepare([]));
  if (first === "--help" || first === "-h") return help.prepare([]);
  if (first === "--version" || first === "-V") return version.prepare([]);
  const mode = find(first);
  if (!mode) {
    const what = first.startsWith("-") ? `option "${first}"` : `mode "${first}"`;
    throw new UsageError(
      `unknown ${what}; expected one of: ${modes.map((m) => m.name).join(", ")}`,
    );
  }
  if (mode !== help && (rest.includes("--help") || rest.includes("-h"))) {
    return help.prepare([mode.name]);
  }
  return mode.prepare(rest);
}

/** No mode at all: the overview, on stderr, and the usage error's status. */
function missingMode(overview: Invocation): Invocation {
  return {
    ...overview,
    async run(context) {
      const { err } = context.output;
      await overview.run({ ...context, output: { out: err, err } });
      return EXIT.usage;
    },
  };
}

/** The `--config PATH` every mode that reads the config takes. */
export interface ConfigArg {
  readonly configPath?: string;
}

/** `--config` for `parseStrict`. */
export const CONFIG_OPTION = { config: { type: "string" } } as const;

/**
 * Takes `--config PATH` / `--config=PATH` out of a mode's arguments and leaves the rest to the
 * mode's own parser (forward and dnat, whose actions parse their own options).
 */
export function takeConfigOption(
  args: readonly string[],
  mode: string,
): ConfigArg & { rest: string[] } {
  const rest: string[] = [];
  let configPath: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--config") {
      configPath = args[++i];
      if (configPath === undefined) throw new UsageError("option --config needs a value", mode);
    } else if (arg.startsWith("--config=")) {
      configPath = arg.slice("--config=".length);
    } else {
      rest.push(arg);
    }
  }
  return { ...withConfig({}, configPath), rest };
}

/** Adds `configPath` when given; an empty one is a usage error. */
export function withConfig<T extends object>(
  command: T,
  configPath: string | undefined,
): T & ConfigArg {
  if (configPath === undefined) return command;
  if (configPath === "") throw new UsageError("--config needs a file path");
  return { ...command, configPath };
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** node:util parseArgs, strict, with its errors turned into one-line usage errors. */
export function parseStrict<T extends Options>(
  args: readonly string[],
  mode: string,
  options: T,
  allowPositionals: boolean,
) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const quoted = /'([^']*)'/.exec((error as Error).message)?.[1];
    switch (code) {
      case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
        throw new UsageError(`unknown option "${quoted ?? "?"}" for ${mode}`, mode);
      case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
        throw new UsageError(`unexpected argument "${quoted ?? "?"}" for ${mode}`, mode);
      case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
        throw new UsageError(`option ${optionName(error)} needs a value`, mode);
      default:
        throw error;
    }
  }
}

function optionName(error: unknown): string {
  const match = /Option '([^']*)'/.exec((error as Error).message);
  return match?.[1]?.split(" ")[0] ?? "?";
}
