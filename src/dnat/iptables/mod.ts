/**
 * The iptables backend (the default): our own chains, every change one
 * `iptables-restore --noflush --wait` transaction, every session rule tagged
 * with its session and owner.
 * @module
 */

import type { BackendOptions, DnatBackend } from "../types.ts";
import { iptablesBackend } from "./backend.ts";

/** The backend for `<dnat_backend>iptables</dnat_backend>`. */
export function create(options: BackendOptions): DnatBackend {
  return iptablesBackend(options.runner);
}
