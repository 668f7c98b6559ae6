/**
 * What the DNAT core works with: the registry's store and lock, the kernel
 * and process views, and who asks for what. Every session's forwarding,
 * reverse (UDP, rules of the config) and forward (TCP and UDP, the forward
 * daemon's, rule 0), changes registry (desired state) and kernel (actual
 * state) together, under one lock shared by the privileged calls, the DNAT
 * service and the forward daemon: installing in install.ts, removing in
 * remove.ts, administering (del, list, reap) in administer.ts, reconciling
 * (dead owners, learning, healing, orphans, purges) in reconcile.ts.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { IpAddress } from "../net/ip.ts";
import type { Config } from "../config/mod.ts";
import type { Target } from "./contract.ts";
import type { Conntrack, FlowCounters } from "./conntrack.ts";
import type { ProcessTable } from "./owner.ts";
import type { Registry, RegistryEntry } from "./registry.ts";
import type { DnatBackend, Owner } from "./types.ts";

/** Where the registry lives, and the lock around it. */
export interface RegistryStore {
  /** Runs `fn` holding the exclusive DNAT lock. */
  lock<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * The registry; empty when missing. While the file is unchanged it may be the very objects
   * an earlier read gave (so backends can tell sessions unchanged at a glance): never change them.
   */
  read(): Promise<Registry>;
  write(registry: Registry): Promise<void>;
  /** Changes whenever the registry is written (cheap: no parsing). */
  stamp(): Promise<string>;
}

/** Everything the DNAT core touches. */
export interface DnatDeps {
  readonly backend: DnatBackend;
  readonly conntrack: Conntrack;
  readonly store: RegistryStore;
  readonly processes: ProcessTable;
  readonly config: Config;
  /** The kernel forwards packets for this family (net.ipv4.ip_forward). */
  forwardingEnabled(family: 4 | 6): Promise<boolean>;
  now(): number;
  sleep(ms: number): Promise<void>;
  readonly log: Logger;
}

/** Who asks: a sudo or socket caller's uid, or root (undefined). */
export interface Caller {
  readonly uid?: number;
}

/** Who registers, as the kernel says (or root names it). */
export interface Claimant {
  readonly owner: Owner;
  /** The session's user; 0 for root. */
  readonly uid: number;
  readonly client: IpAddress;
  readonly proxy: IpAddress;
  /** The client's SSH connection, when it was read from sshd's socket. */
  readonly ssh?: RegistryEntry["ssh"];
}

/** One session to register: its issued id, who it is, where it goes. */
export interface Registration {
  readonly id: string;
  readonly claimant: Claimant;
  readonly target: Target;
  /** The proxy user as the session names itself, for the closing line. */
  readonly user?: string;
}

/** What a session's end leaves to say: its entry, and what its UDP flows carried. */
export interface Ended {
  readonly entry: RegistryEntry;
  readonly udp?: FlowCounters;
}
