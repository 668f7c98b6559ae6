/**
 * What each command keeps of the binary's permission set. Everything else is
 * revoked before the mode runs (see src/platform/permissions.ts).
 * @module
 */

import { LIBC_PATHS, LIBNFTABLES_PATHS } from "../process/libraries.ts";
import type { Command } from "./parse.ts";
import { CHECK_PROGRAMS } from "../check/host.ts";

/** What a mode keeps. Anything not listed is revoked. */
export interface Needs {
  readonly read?: true;
  readonly write?: true;
  readonly net?: true;
  readonly env?: true;
  readonly sys?: true;
  /** Libraries the mode may load through FFI; every other one in the set is revoked. */
  readonly ffi?: readonly string[];
  /** Programs the mode may run; everything else in the set is revoked. */
  readonly run?: readonly string[];
}
/** The permissions a command needs. Pure. */
export function needsOf(command: Command): Needs {
  switch (command.mode) {
    case "help":
    case "version":
      return {};
    case "check":
      // Reads files; no network, no writes. The live-system audit runs only the fixed,
      // read-only command lines of check/host.ts (queryArgv).
      if (command.topic === "config" || command.topic === "defaults") {
        return { read: true, env: true };
      }
      // Logs in to the internal servers: connections, and nothing else.
      if (command.topic === "upstreams") return { read: true, env: true, net: true };
      return {
        read: true,
        env: true,
        run: CHECK_PROGRAMS,
      };
    case "reverse":
      // Config, keys and known_hosts; balancer state and log files; the host key probe;
      // logger(1) for syslog, sudo for the DNAT call; FFI on libc for the exec into ssh;
      // the uid, to tell whether ssh will accept a key's mode.
      return {
        read: true,
        write: true,
        net: true,
        env: true,
        sys: true,
        ffi: LIBC_PATHS,
        run: ["logger", "sudo"],
      };
    case "dnat":
      // Netfilter and conntrack tools, the config, its lock and log; never the network. The
      // service alone (root, started by the init system, no caller's input) may load
      // libnftables: one netlink socket instead of an nft run per change. The calls sessions
      // and users make through sudo run nft instead.
      return {
        read: true,
        write: true,
        env: true,
        ...(command.args[0] === "serve" ? { ffi: LIBNFTABLES_PATHS } : {}),
        run: [
          "iptables",
          "iptables-save",
          "iptables-restore",
          "ip6tables",
          "ip6tables-save",
          "ip6tables-restore",
          "nft",
          "conntrack",
          "logger",
          "sysctl",
          "ps",
          "cat",
        ],
      };
    case "forward":
      if (command.args[0] === "connect") return { read: true, net: true, env: true };
      if (command.args[0] === "user") return { read: true, write: true, env: true };
      // The daemon: API sockets, its DNAT rules, users file, logs; openssl makes the default
      // HTTPS certificate when none is configured.
      return {
        read: true,
        write: true,
        net: true,
        env: true,
        run: [
          "iptables",
          "iptables-save",
          "iptables-restore",
          "ip6tables",
          "ip6tables-save",
          "ip6tables-restore",
          "conntrack",
          "logger",
          "sysctl",
          "ps",
          "ip",
          "openssl",
        ],
      };
  }
}
