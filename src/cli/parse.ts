/**
 * argv → a typed command. Pure: no I/O, no environment.
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";

/** The top-level modes. */
export const MODES = ["reverse", "forward", "check", "dnat", "version", "help"] as const;
/** One of `MODES`. */
export type Mode = (typeof MODES)[number];

/** What `xferproxy check` can look at. */
export const CHECK_TOPICS = ["config", "defaults", "system", "users", "upstreams"] as const;
/** One of `CHECK_TOPICS`, or everything. */
export type CheckTopic = (typeof CHECK_TOPICS)[number] | "all";

/** A parsed command line. */
export type Command =
  | { readonly mode: "help"; readonly topic?: Mode }
  | { readonly mode: "version" }
  | {
    readonly mode: "check";
    readonly topic: CheckTopic;
    readonly configPath?: string;
    readonly json: boolean;
    readonly root?: string;
    readonly sshdConfig?: string;
    /** `check upstreams`: the account to log in as where a rule uses each user's own. */
    readonly user?: string;
  }
  | { readonly mode: "reverse"; readonly configPath?: string }
  | {
    readonly mode: "forward" | "dnat";
    readonly configPath?: string;
    readonly args: readonly string[];
  };

/** A command line that cannot be run; `helpFor` names the mode whose help to point at. */
export class UsageError extends Error {
  readonly helpFor: Mode | undefined;
  constructor(message: string, helpFor?: Mode) {
    super(message);
    this.name = "UsageError";
    this.helpFor = helpFor;
  }
}

const CONFIG_OPTION = {
  config: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * Parses `xferproxy <mode> [options]` (argv without the program name).
 * @throws {UsageError} for an unknown mode, option or argument
 */
export function parseCommand(argv: readonly string[]): Command {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h") return { mode: "help" };
  if (first === "--version" || first === "-V") return { mode: "version" };
  if (!(MODES as readonly string[]).includes(first)) {
    const what = first.startsWith("-") ? `option "${first}"` : `mode "${first}"`;
    throw new UsageError(`unknown ${what}; expected one of: ${MODES.join(", ")}`);
  }
  const mode = first as Mode;
  switch (mode) {
    case "help":
      return parseHelp(rest);
    case "version":
      parseStrict(rest, "version", { help: CONFIG_OPTION.help }, false);
      return rest.length ? { mode: "help", topic: "version" } : { mode: "version" };
    case "check":
      return parseCheck(rest);
    case "reverse": {
      const { values } = parseStrict(rest, mode, CONFIG_OPTION, false);
      if (values.help) return { mode: "help", topic: mode };
      return withConfig({ mode }, values.config);
    }
    case "forward":
    case "dnat":
      return parsePassThrough(mode, rest);
  }
}

/** Modes with their own argument parsers: take --config and --help here, pass the rest on. */
function parsePassThrough(mode: "forward" | "dnat", rest: string[]): Command {
  if (rest.includes("--help") || rest.includes("-h")) return { mode: "help", topic: mode };
  const args: string[] = [];
  let configPath: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === "--config") {
      configPath = rest[++i];
      if (configPath === undefined) throw new UsageError("option --config needs a value", mode);
    } else if (arg.startsWith("--config=")) {
      configPath = arg.slice("--config=".length);
    } else {
      args.push(arg);
    }
  }
  return withConfig({ mode, args }, configPath);
}

function parseHelp(rest: string[]): Command {
  const [topic, extra] = rest;
  if (topic === undefined) return { mode: "help" };
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`, "help");
  if (!(MODES as readonly string[]).includes(topic)) {
    throw new UsageError(`no help for unknown mode "${topic}"; modes: ${MODES.join(", ")}`);
  }
  return { mode: "help", topic: topic as Mode };
}

function parseCheck(rest: string[]): Command {
  const options = {
    ...CONFIG_OPTION,
    json: { type: "boolean" },
    root: { type: "string" },
    "sshd-config": { type: "string" },
    user: { type: "string" },
  } as const;
  const { values, positionals } = parseStrict(rest, "check", options, true);
  if (values.help) return { mode: "help", topic: "check" };
  const [topicText, extra] = positionals;
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument "${extra}" for check`, "check");
  }
  if (topicText !== undefined && !(CHECK_TOPICS as readonly string[]).includes(topicText)) {
    throw new UsageError(
      `unknown check "${topicText}"; expected one of: ${CHECK_TOPICS.join(", ")}`,
      "check",
    );
  }
  if (values.root !== undefined && !values.root.startsWith("/")) {
    throw new UsageError(`--root must be an absolute path, got "${values.root}"`, "check");
  }
  const topic = (topicText ?? "all") as CheckTopic;
  if (topic === "upstreams" && values.root !== undefined) {
    throw new UsageError(
      "check upstreams logs in to live servers: it does not take --root",
      "check",
    );
  }
  if (values.user !== undefined && topic !== "upstreams") {
    throw new UsageError("--user goes with check upstreams", "check");
  }
  const sshdConfig = values["sshd-config"];
  const command = {
    mode: "check" as const,
    topic,
    json: values.json ?? false,
    ...(values.root !== undefined ? { root: values.root } : {}),
    ...(values.user !== undefined ? { user: values.user } : {}),
    ...(sshdConfig !== undefined ? { sshdConfig } : {}),
  };
  return withConfig(command, values.config);
}

function withConfig<T extends object>(
  command: T,
  configPath: string | undefined,
): T & { configPath?: string } {
  if (configPath === undefined) return command;
  if (configPath === "") throw new UsageError("--config needs a file path");
  return { ...command, configPath };
}

type Options = NonNullable<ParseArgsConfig["options"]>;

function parseStrict<T extends Options>(
  args: string[],
  mode: Mode,
  options: T,
  allowPositionals: boolean,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
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

/** The config path: `--config`, then `XFERPROXY_CONFIG`, then the default. */
export function resolveConfigPath(
  command: { configPath?: string },
  env: (name: string) => string | undefined,
  fallback: string,
): string {
  const fromEnv = env("XFERPROXY_CONFIG");
  return command.configPath ?? (fromEnv ? fromEnv : fallback);
}

/**
 * Runs a mode's argument parser; a usage error becomes its one line on
 * `say` (with the hint where to read more) and undefined.
 */
export function parseOrSay<T>(
  parse: () => T,
  mode: Mode,
  say: (line: string) => void,
  hint: (mode: Mode) => string,
): T | undefined {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    say(`xferproxy: ${error.message} (${hint(error.helpFor ?? mode)})\n`);
    return undefined;
  }
}
