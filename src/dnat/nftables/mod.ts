/**
 * The nftables backend: our own `ip`/`ip6 xferproxy` tables, sessions as
 * timed set and map elements, every change one transaction; in-process
 * through libnftables where the caller offers it, else the nft command.
 * @module
 */

import type { BackendOptions, DnatBackend } from "../types.ts";
import { nftablesBackend, nftCommandRunner } from "./backend.ts";

/** The backend for `<dnat_backend>nftables</dnat_backend>`. */
export function create(options: BackendOptions): DnatBackend {
  return nftablesBackend(options.nft?.() ?? nftCommandRunner(options.runner));
}
