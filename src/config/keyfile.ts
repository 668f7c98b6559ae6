/**
 * `$(user)` substitution in `<keyfile>`, refusing names that could escape the path.
 * @module
 */

import { parseUsername } from "./values.ts";

/** A user name that cannot be used to build a path or log in upstream. */
export class InvalidUserError extends Error {
  constructor(user: string) {
    super(`Invalid user name "${user}": must match [a-z_][a-z0-9_.-]{0,31}`);
    this.name = "InvalidUserError";
  }
}

/**
 * Replaces every `$(user)` in a keyfile template.
 * @throws {InvalidUserError} before any path is built, when `user` is not a safe login name
 */
export function expandKeyfile(template: string, user: string): string {
  if (!parseUsername(user).ok) throw new InvalidUserError(user);
  return template.replaceAll("$(user)", user);
}
