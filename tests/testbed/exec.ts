/**
 * Running commands in tests: argv arrays, time limits, captured output.
 * @module
 */

/** What a command printed and how it ended. */
export interface Ran {
  readonly code: number;
  readonly signal: Deno.Signal | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for `run`. */
export interface RunOptions {
  readonly stdin?: string | Uint8Array;
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

/**
 * argv running `script` (sh, with "$@" the rest of the argv) in a private mount namespace:
 * the mounts it makes vanish with it.
 */
export function inPrivateMounts(script: string): string[] {
  return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"];
}

/** Runs argv to completion (killed after the time limit) and returns what happened. */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<Ran> {
  const [program, ...args] = argv;
  const child = new Deno.Command(program as string, {
    args,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(
      typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin,
    )
      .catch(() => {});
    await writer.close().catch(() => {});
  }
  const result = await child.output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    signal: result.signal,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

/** Runs argv and throws with its stderr unless it exits 0; returns stdout. */
export async function must(argv: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await run(argv, options);
  if (result.code !== 0) {
    throw new Error(
      `${argv.join(" ")} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result.stdout;
}

/** Waits until `probe` resolves true, polling every `everyMs`, at most `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 100,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}
