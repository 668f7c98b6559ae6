/**
 * The process side of a reverse session: sshd's pipes (or pty) as streams,
 * the terminal when there is one, the signals sshd sends, and ending the
 * process the way the upstream command ended.
 * @module
 */

import type { ClientStdio } from "../ssh/relay.ts";
import type { ClientTerminal } from "../reverse/session.ts";

/** stdin, stdout and stderr as streams. */
export function processStdio(): ClientStdio {
  return { stdin: Deno.stdin.readable, stdout: Deno.stdout.writable, stderr: Deno.stderr.writable };
}

/** The client's pty, when sshd allocated one (the client asked for it and PermitTTY allows it). */
export function processTerminal(
  env: (name: string) => string | undefined,
): ClientTerminal | undefined {
  if (!Deno.stdin.isTerminal()) return undefined;
  return {
    term: env("TERM") ?? "xterm",
    size: () => {
      try {
        const { columns, rows } = Deno.consoleSize();
        return { rows, cols: columns };
      } catch {
        return { rows: 24, cols: 80 };
      }
    },
    setRaw: (raw) => setTerminalRaw(raw),
    onResize: (callback) => {
      Deno.addSignalListener("SIGWINCH", callback);
      return () => Deno.removeSignalListener("SIGWINCH", callback);
    },
  };
}

let savedTerminal: string | undefined;

/**
 * Raw mode on sshd's pty, output processing included (Deno's setRaw leaves
 * OPOST on, which would turn the upstream pty's \r\n into \r\r\n):
 * `stty raw -echo`, restoring the saved settings afterwards.
 */
function setTerminalRaw(raw: boolean): void {
  const stty = (args: string[]) =>
    new Deno.Command("stty", { args, stdin: "inherit", stdout: "piped", stderr: "null" })
      .outputSync();
  try {
    if (raw) {
      const saved = stty(["-g"]);
      if (saved.success) savedTerminal = new TextDecoder().decode(saved.stdout).trim();
      stty(["raw", "-echo"]);
    } else if (savedTerminal) {
      stty([savedTerminal]);
    }
  } catch { /* no stty: the session still works, with cooked output */ }
}

const ENDING_SIGNALS = ["SIGHUP", "SIGTERM", "SIGINT"] as const;

/** An abort signal that fires when sshd sends SIGHUP, SIGTERM or SIGINT; `dispose` stops listening. */
export function terminationSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  for (const name of ENDING_SIGNALS) Deno.addSignalListener(name, onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const name of ENDING_SIGNALS) Deno.removeSignalListener(name, onSignal);
    },
  };
}

/** Writes one line to stderr, synchronously (also after the relay released its writers). */
export function writeStderrLine(line: string): void {
  const bytes = new TextEncoder().encode(line + "\n");
  try {
    let rest = bytes;
    while (rest.length > 0) rest = rest.subarray(Deno.stderr.writeSync(rest));
  } catch { /* the client is gone */ }
}
