/**
 * Netfilter backends by name: the one place a backend is chosen (the
 * config's `<dnat_backend>`, the dnat actions, the forward daemon and
 * `check system` all come here). Each backend is a folder whose mod.ts
 * exports `create`; adding one is that folder and one line in `BACKENDS`.
 * A backend's code is loaded only when it is chosen.
 * @module
 */

import type { CommandRunner } from "../process/runner.ts";
import { IPTABLES_PROGRAMS } from "../process/packages.ts";
import type { BackendOptions, DnatBackend } from "./types.ts";

/** One backend: its code, loaded when chosen, and the programs it may run (permissions). */
interface BackendEntry {
  load(): Promise<{ create(options: BackendOptions): DnatBackend }>;
  readonly programs: readonly string[];
}

/** Every backend, by the name `<dnat_backend>` gives it. */
export const BACKENDS = {
  iptables: { load: () => import("./iptables/mod.ts"), programs: IPTABLES_PROGRAMS },
  nftables: { load: () => import("./nftables/mod.ts"), programs: ["nft"] },
} as const satisfies Record<string, BackendEntry>;

/**
 * Every program any backend may run: what the modes that reach netfilter
 * are allowed to run, decided before the config (and so the backend) is read.
 */
export const BACKEND_PROGRAMS: readonly string[] = Object.values(BACKENDS).flatMap((b) =>
  b.programs
);

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
  return (await BACKENDS[name].load()).create(options);
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
