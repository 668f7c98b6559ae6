/**
 * Where `forward connect` takes the API password from: `--password-file`
 * (its first line), the URL (which every user of the host sees in `ps`, so
 * it warns), or the environment (`XFERPROXY_PROXY_PASS`, then Aspera's
 * `ASPERA_PROXY_PASS`), which only the same user and root can read.
 * @module
 */

import type { Fs } from "../config/fs.ts";
import { errorText, UserError } from "../errors.ts";

/** What the command line gave: at most one of the two. */
export interface PasswordSources {
  readonly passwordFile?: string;
  readonly urlPassword?: string;
}

/** The password, if any, and the warnings to print (one line each). */
export interface ConnectPassword {
  readonly password?: string;
  readonly warnings: readonly string[];
}

/**
 * Finds the password for `forward connect`.
 * @throws {UserError} when the password file cannot be read or is empty
 */
export async function connectPassword(
  sources: PasswordSources,
  host: { readonly env: (name: string) => string | undefined; readonly fs: Fs },
): Promise<ConnectPassword> {
  if (sources.passwordFile !== undefined) return await fromFile(sources.passwordFile, host.fs);
  if (sources.urlPassword !== undefined) {
    return {
      password: sources.urlPassword,
      warnings: [
        "WARN the password in the --proxy URL shows in ps to every user of this host; use --password-file PATH or XFERPROXY_PROXY_PASS",
      ],
    };
  }
  const password = host.env("XFERPROXY_PROXY_PASS") ?? host.env("ASPERA_PROXY_PASS");
  return { ...(password !== undefined ? { password } : {}), warnings: [] };
}

async function fromFile(path: string, fs: Fs): Promise<ConnectPassword> {
  let text: string;
  let mode: number;
  try {
    text = await fs.readTextFile(path);
    mode = (await fs.stat(path)).mode;
  } catch (error) {
    throw new UserError(`Cannot read the password file "${path}": ${errorText(error)}`, {
      cause: error,
    });
  }
  const password = text.split("\n")[0]!.replace(/\r$/, "");
  if (password === "") {
    throw new UserError(
      `The password file "${path}" is empty: put the password on its first line`,
    );
  }
  const open = (mode & 0o077) !== 0;
  return {
    password,
    warnings: open
      ? [
        `WARN the password file "${path}" is readable by other users (mode ${
          (mode & 0o777).toString(8).padStart(4, "0")
        }); chmod 600 it`,
      ]
      : [],
  };
}
