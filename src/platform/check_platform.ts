/**
 * The real system under check mode (check/run.ts's `CheckPlatform`).
 * @module
 */

import type { CheckPlatform } from "../check/run.ts";
import { checkHost } from "./check_host.ts";
import { realRunner } from "./runner.ts";
import { realFs } from "./fs.ts";

/** The live system, or a mounted image under --root, read only. */
export const checkPlatform: CheckPlatform = {
  fs: realFs,
  host: (root) => checkHost(root, realRunner),
};
