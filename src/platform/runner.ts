/**
 * Running programs behind a small interface, so the DNAT backends can be
 * tested with a recording fake (tests/_fakes/runner.ts) that sees the exact
 * argv and stdin, like Kubernetes' FakeIPTables.
 * @module
 */

/** The outcome of one program run. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs one program: argv, never a shell string. */
export interface CommandRunner {
  run(
    program: string,
    args: readonly string[],
    options?: { stdin?: string },
  ): Promise<CommandResult>;
}

/** A program that could not be started at all (not installed, or not permitted). */
export class CommandNotFoundError extends Error {
  readonly program: string;
  constructor(program: string, options?: ErrorOptions) {
    super(`${program} is not installed or not on PATH`, options);
    this.name = "CommandNotFoundError";
    this.program = program;
  }
}

/** The real runner; PATH is extended with the sbin directories where netfilter tools live. */
export const realRunner: CommandRunner = {
  async run(program, args, options = {}) {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(program, {
        args: [...args],
        stdin: options.stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
        env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
        clearEnv: true,
      }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new CommandNotFoundError(program, { cause: error });
      }
      throw error;
    }
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const { code, stdout, stderr } = await child.output();
    const decoder = new TextDecoder();
    return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  },
};
