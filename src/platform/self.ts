/**
 * Where this xferproxy lives: the path sudoers names when a session runs
 * `sudo xferproxy dnat add`. A compiled binary is its own executable; the
 * launcher script (`make bin`) passes its path as a first argument
 * `--launcher=PATH`, because an environment variable could come from an SSH
 * client (AcceptEnv) and argv comes only from sshd's ForceCommand.
 * @module
 */

const PREFIX = "--launcher=";

/** The launcher's path and the arguments that follow it. */
export interface Launch {
  /** Absolute path of the xferproxy executable or launcher script. */
  readonly self: string;
  /** The command line, without the launcher's own argument. */
  readonly args: readonly string[];
  /** Started by the launcher (whose reverse sessions start as the session client). */
  readonly byLauncher: boolean;
}

/** Splits the launcher's argument off; without one, the executable is its own path. */
export function parseLaunch(args: readonly string[], execPath: string): Launch {
  const first = args[0];
  if (first?.startsWith(PREFIX) && first.length > PREFIX.length) {
    return { self: first.slice(PREFIX.length), args: args.slice(1), byLauncher: true };
  }
  return { self: execPath, args, byLauncher: false };
}

/** Whether root runs this; where that may not be asked (no sys permission), yes: no hint to add. */
export function runByRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return true;
  }
}
