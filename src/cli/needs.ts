/**
 * What each command keeps of the binary's permission set. Everything else is
 * revoked before the mode runs (see src/platform/permissions.ts).
 * @module
 */

import type { Needs } from "../platform/permissions.ts";
import type { Command } from "./parse.ts";

/** The permissions a command needs. Pure. */
export function needsOf(command: Command): Needs {
  switch (command.mode) {
    case "help":
    case "version":
      return {};
    case "check":
      // Reads files; no network, no writes. The live-system audit runs only programs that
      // report versions or state: netfilter tools, conntrack, sysctl, ps.
      if (command.topic === "config" || command.topic === "defaults") {
        return { read: true, env: true };
      }
      return {
        read: true,
        env: true,
        run: ["iptables", "iptables-save", "nft", "conntrack", "sysctl", "ps"],
      };
    case "reverse":
      // Upstream SSH, config/keys/known_hosts, balancer state and log files,
      // logger(1) for syslog, stty for the client's pty, sudo for the DNAT helper.
      return { read: true, write: true, net: true, env: true, run: ["logger", "stty", "sudo"] };
    case "dnat":
      // Netfilter and conntrack tools, the config, its lock and log; never the network.
      return {
        read: true,
        write: true,
        env: true,
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
        ],
      };
    case "forward":
      if (command.args[0] === "connect") return { read: true, net: true, env: true };
      if (command.args[0] === "user") return { read: true, write: true, env: true };
      // The daemon: API sockets, its DNAT rules, users file, logs.
      return {
        read: true,
        write: true,
        net: true,
        env: true,
        run: [
          "iptables",
          "iptables-save",
          "iptables-restore",
          "conntrack",
          "logger",
          "sysctl",
          "ps",
          "ip",
        ],
      };
  }
}
