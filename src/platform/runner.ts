/**
 * The real CommandRunner (process/runner.ts): Deno.Command, PATH extended
 * with the sbin directories where netfilter tools live.
 * @module
 */

import { CommandNotFoundError, type CommandResult, type CommandRunner } from "../process/runner.ts";

/** A child's output stream, read to its end. */
async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text + decoder.decode();
}

/** How long a program may run before it is killed (SIGTERM): every privileged run is bounded. */
export const RUN_TIMEOUT_MS = 60_000;

/**
 * A runner whose children are killed after `timeoutMs` (then their status says so, code 143):
 * a netfilter tool waiting forever on a lock another process holds must not hang root.
 * PATH is extended with the sbin directories where netfilter tools live.
 *
 * In Deno 2.9, `spawn()` followed by `child.output()` keeps about 100 KiB per child that is
 * never freed; the DNAT service runs thousands of children. So: `Command.output()` when there
 * is no input, and explicit readers when there is.
 */
export function boundedRunner(timeoutMs: number): CommandRunner {
  return { run: (program, args, options = {}) => runBounded(timeoutMs, program, args, options) };
}

/** The real runner: every program bounded by `RUN_TIMEOUT_MS`. */
export const realRunner: CommandRunner = boundedRunner(RUN_TIMEOUT_MS);

/**
 * The whole environment of the tools the service runs: the sbin directories where netfilter
 * tools live, and the C locale and UTC, so output such as ps's start times parses the same
 * everywhere.
 */
export const TOOL_ENV = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LC_ALL: "C",
  TZ: "UTC",
} as const;

async function runBounded(
  timeoutMs: number,
  program: string,
  args: readonly string[],
  options: { stdin?: string },
): Promise<CommandResult> {
  const command = new Deno.Command(program, {
    args: [...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: TOOL_ENV,
    clearEnv: true,
    signal: AbortSignal.timeout(timeoutMs),
  });
  try {
    if (options.stdin === undefined) {
      const { code, stdout, stderr } = await command.output();
      const decoder = new TextDecoder();
      return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
    }
    const child = command.spawn();
    const writer = child.stdin.getWriter();
    const [stdout, stderr, status] = await Promise.all([
      readAll(child.stdout),
      readAll(child.stderr),
      child.status,
      // A program that exits without reading its input still reports its status and stderr.
      writer.write(new TextEncoder().encode(options.stdin)).then(() => writer.close()).catch(
        () => {},
      ),
    ]);
    return { code: status.code, stdout, stderr };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CommandNotFoundError(program, { cause: error });
    }
    throw error;
  }
}
