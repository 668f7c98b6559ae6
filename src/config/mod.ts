/**
 * The shared configuration module: aspera.conf XML → validated, frozen `Config`.
 * @module
 */

export * from "./types.ts";
export {
  ConfigError,
  formatPosition,
  formatProblem,
  loadConfig,
  parseConfigText,
  readConfigReport,
} from "./load.ts";
export type { ConfigReport } from "./load.ts";
export { expandKeyfile, InvalidUserError } from "./keyfile.ts";
export { DEFAULT_CONFIG_PATH, FAULTY_SECONDS } from "./spec.ts";
export { formatOptionSpec } from "./spec_text.ts";
