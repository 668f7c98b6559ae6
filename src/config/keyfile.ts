/**
 * `$(user)` substitution in `<keyfile>`, refusing names that could escape the path.
 * @module
 */

import { userNameProblem } from "./values.ts";

/** A user name that cannot be used to build a path or log in upstream. */
export class InvalidUserError extends Error {
  constructor(user: string, problem: string) {
    super(`Invalid user name ${JSON.stringify(user)}: ${problem}`);
    this.name = "InvalidUserError";
  }
}

/**
 * Replaces every `$(user)` in a keyfile template.
 * @throws {InvalidUserError} before any path is built, when `user` is not a safe login name
 */
export function expandKeyfile(template: string, user: string): string {
  const problem = userNameProblem(user);
  if (problem) throw new InvalidUserError(user, problem);
  return template.replaceAll("$(user)", user);
}
