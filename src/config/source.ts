/**
 * Which config file counts: one rule, for every mode. The file decides who
 * may reach which internal server, so who may name it matters more than
 * where it lives.
 * @module
 */

import { DEFAULT_CONFIG_PATH } from "./spec.ts";

/** Who is reading the config, as far as choosing the file goes. */
export type ConfigReader =
  /**
   * A reverse session: sshd's ForceCommand may pass `--config`; the environment never counts,
   * because part of it comes from the client (`SetEnv`, `AcceptEnv`).
   */
  | "session"
  /**
   * A privileged call through sudo (`dnat` run by a proxy group member): the system file only,
   * whatever `--config` or the environment say, opened as root's own file.
   */
  | "privileged"
  /** An administrator's command: `--config`, then `XFERPROXY_CONFIG` (not under sudo), then the default. */
  | "administrator";

/** The file to read, and how to open it. */
export interface ConfigSource {
  readonly path: string;
  /**
   * Open it as a system file: a regular file owned by root and writable by nobody else, no
   * symlink followed, never blocking (a FIFO planted by a caller).
   */
  readonly system: boolean;
}

/**
 * The config file a reader uses.
 * @param configPath `--config`, when given.
 * @param env the process environment.
 */
export function configSource(
  reader: ConfigReader,
  configPath: string | undefined,
  env: (name: string) => string | undefined,
): ConfigSource {
  switch (reader) {
    case "privileged":
      return { path: DEFAULT_CONFIG_PATH, system: true };
    case "session":
      return { path: configPath ?? DEFAULT_CONFIG_PATH, system: false };
    case "administrator": {
      // sudo keeps a caller's environment under -E or env_keep: it is not root's word.
      const fromEnv = env("SUDO_UID") === undefined ? env("XFERPROXY_CONFIG") : undefined;
      return { path: configPath ?? (fromEnv ? fromEnv : DEFAULT_CONFIG_PATH), system: false };
    }
  }
}
