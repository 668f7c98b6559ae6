/**
 * Netfilter backends by name: the one place a backend is chosen (the
 * config's `<dnat_backend>`, the dnat actions, the forward daemon and
 * `check system` all come here). Each backend is a folder whose mod.ts
 * exports `create`; adding one is that folder and one line in `BACKENDS`.
 * A backend's code is loaded only when it is chosen.
 * @module
 */

import type { CommandRunner } from "../process/runner.ts";
import type { BackendOptions, DnatBackend } from "./types.ts";

/** Every backend, by the name `<dnat_backend>` gives it; the first is the default. */
export const BACKENDS = {
  iptables: () => import("./iptables/mod.ts"),
  nftables: () => import("./nftables/mod.ts"),
} as const satisfies Record<
  string,
  () => Promise<{ create(options: BackendOptions): DnatBackend }>
>;

/** A backend's name. */
export type BackendName = keyof typeof BACKENDS;

/** The names `<dnat_backend>` accepts. */
export const BACKEND_NAMES: readonly BackendName[] = Object.keys(BACKENDS) as BackendName[];

/** The backend when the config names none. */
export const DEFAULT_BACKEND: BackendName = "iptables";

/** True for a name of `BACKENDS`. */
export function isBackendName(name: string): name is BackendName {
  return Object.hasOwn(BACKENDS, name);
}

/**
 * The backend called `name`, reaching the kernel as `options` say.
 * @throws {RangeError} for a name the table does not hold (the config never lets one through)
 */
export async function createBackend(
  name: string,
  options: BackendOptions,
): Promise<DnatBackend> {
  if (!isBackendName(name)) {
    throw new RangeError(`Unknown DNAT backend "${name}": expected ${BACKEND_NAMES.join(" or ")}`);
  }
  return (await BACKENDS[name]()).create(options);
}

/**
 * The backend called `name`, built only to say what it is (its tool,
 * libraries and capabilities: `check system`); it must never run anything.
 */
export function describeBackend(name: string): Promise<DnatBackend> {
  return createBackend(name, { runner: NO_RUNNER });
}

const NO_RUNNER: CommandRunner = {
  run: (program) => Promise.reject(new Error(`${program}: a described backend runs nothing`)),
};
