/**
 * A mode in one place (as Caddy's cmd.Command): its name, help, argument
 * parser, permissions and entry point. main.ts holds the table and binds
 * each mode to its real platform; the mode never imports platform/.
 * @module
 */

import { ServiceStartError } from "../errors.ts";
import type { Needs } from "./needs.ts";
import type { Output } from "./output.ts";

/** What main.ts gives every mode. */
export interface RunContext {
  readonly output: Output;
  /** This executable's path, for the sudo call (platform/self.ts). */
  readonly self: string;
  /** The process environment (reverse mode reads only what sshd sets). */
  readonly env: (name: string) => string | undefined;
}

/** One mode. `Args` is what its parser returns; `Platform` the real I/O it runs on. */
export interface ModeCommand<Args, Platform> {
  readonly name: string;
  /** Its lines in the overview (`xferproxy --help`), already indented. */
  readonly summary: string;
  /** `xferproxy <name> --help`. */
  readonly usage: string;
  /**
   * The arguments after the mode name, fully typed (`-h`/`--help` never reach it).
   * @throws {UsageError} for anything it cannot run
   */
  parse(args: readonly string[]): Args;
  /** What the invocation keeps of the binary's permissions; everything else is revoked first. */
  needs(args: Args): Needs;
  /**
   * Whether the invocation is a daemon (absent: never): whatever ends it early is reported as
   * Aspera Proxy's `ERR Failed to initialize proxy service` line and the reason.
   */
  daemon?(args: Args): boolean;
  /**
   * Runs the mode and resolves to the exit status. `platform` loads the real I/O (only this
   * mode's code); expected failures are thrown as `UserError`s.
   */
  run(args: Args, platform: () => Promise<Platform>, context: RunContext): Promise<number>;
}

/** A parsed command line: the permissions it keeps and how to run it. */
export interface Invocation {
  readonly mode: string;
  readonly needs: Needs;
  run(context: RunContext): Promise<number>;
}

/** A mode bound to its platform, with its types erased: one row of main.ts's table. */
export interface ModeEntry {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  /** @throws {UsageError} */
  prepare(args: readonly string[]): Invocation;
}

/** Binds a mode to the loader of its real platform. */
export function bindPlatform<Args, Platform>(
  command: ModeCommand<Args, Platform>,
  platform: () => Promise<Platform>,
): ModeEntry {
  return {
    name: command.name,
    summary: command.summary,
    usage: command.usage,
    prepare(args) {
      const parsed = command.parse(args);
      const daemon = command.daemon?.(parsed) ?? false;
      return {
        mode: command.name,
        needs: command.needs(parsed),
        run: daemon
          ? (context) =>
            command.run(parsed, platform, context).catch((error) => {
              throw ServiceStartError.from(error);
            })
          : (context) => command.run(parsed, platform, context),
      };
    },
  };
}

/** A mode that needs no platform (help, version). */
export function withoutPlatform<Args>(command: ModeCommand<Args, void>): ModeEntry {
  return bindPlatform(command, () => Promise.resolve());
}
