/**
 * Runs the built `dist/xferproxy` (compiled binary or launcher) as a real
 * process, with a time limit.
 * @module
 */

/** What a run printed and how it ended. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The repository root. */
export const ROOT = new URL("../../", import.meta.url).pathname;
/** The binary every end-to-end test and the demo run. */
export const BINARY = `${ROOT}dist/xferproxy`;
/**
 * The distribution's Python, as sysdeps installs it, for the probes and echo servers: not a
 * version manager's shim from the caller's PATH (pyenv's runs a shell per start and fails in a
 * working directory that a test's private mounts hide).
 */
export const PYTHON = "/usr/bin/python3";

/**
 * `argv` run as restricted as the packaged systemd unit says (capabilities, no new privileges,
 * umask, system call filter, address families: tests/testbed/unit_sandbox.py), so the tests
 * that run the DNAT service or the forward daemon check that its unit still lets it work.
 */
export function underUnit(unit: "xferproxy-dnat" | "xferproxy-forward", argv: string[]): string[] {
  return [
    PYTHON,
    `${ROOT}tests/testbed/unit_sandbox.py`,
    `${ROOT}packaging/systemd/${unit}.service`,
    "--",
    ...argv,
  ];
}

/**
 * argv running the probe `tests/e2e/probes/<name>` with the project's Deno, allowed to read and
 * write `dir` only, as a session process is restricted.
 */
export function probeArgv(name: string, dir: string, args: string[]): string[] {
  return [
    `${ROOT}.tools/bin/deno`,
    "run",
    "--quiet",
    "--cached-only",
    "--config",
    `${ROOT}deno.json`,
    `--allow-read=${dir}`,
    `--allow-write=${dir}`,
    `${ROOT}tests/e2e/probes/${name}`,
    ...args,
  ];
}

/** Runs dist/xferproxy with the given args; stdin is closed; killed after `timeoutMs`. */
export async function runXferproxy(
  args: string[],
  options: {
    env?: Record<string, string>;
    clearEnv?: boolean;
    timeoutMs?: number;
    stdin?: string;
  } = {},
): Promise<RunResult> {
  const command = new Deno.Command(BINARY, {
    args,
    env: options.env ?? {},
    clearEnv: options.clearEnv ?? false,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const child = command.spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(
  prefix = "xferproxy-test-",
): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await Deno.makeTempDir({ prefix });
  return { path, remove: () => Deno.remove(path, { recursive: true }).catch(() => {}) };
}
