/**
 * `xferproxy dnat`: the only code that changes netfilter. Its name, help,
 * arguments (the typed contract in contract.ts) and permissions; the actions
 * run in run.ts, loaded only when they run.
 * @module
 */

import { takeConfigOption } from "../cli/parse.ts";
import type { ModeCommand } from "../cli/command.ts";
import { LIBC_PATHS, LIBNFTABLES_PATHS } from "../process/libraries.ts";
import { COPIED_PATH, PACKAGED_PATH } from "../process/packages.ts";
import { BACKEND_PROGRAMS } from "./backends.ts";
import { type DnatArgs, parseDnatArgs } from "./contract.ts";
import type { DnatPlatform } from "./run.ts";

const USAGE = `Usage: xferproxy dnat <action> [--config PATH]

The only code that changes netfilter. Reverse sessions register with the DNAT
service ("serve") over its socket (<service_socket>, root and <proxy_group>
only); while it is down, FASP sessions run "add" through sudo (sudoers:
%xferproxy ALL=(root) NOPASSWD: ${PACKAGED_PATH} dnat *, the package's path;
${COPIED_PATH} for the single file installed by hand). Through sudo only
/etc/xferproxy/aspera.conf counts (--config is ignored), it must be root's,
and a caller sees and changes only its own sessions.

  add --rule N --host I --server IP:PORT
        install one session's UDP forwarding and return. The session is the
        process that ran sudo, its client and proxy addresses those of the sshd
        connection it descends from (read from the kernel); the destination and
        ports come from rule N, host I (0-based) of the config, which must be
        the server given. The rules live as long as the session (pid and start
        time). Answers one JSON line: {"event":"installed","session":ID,…},
        {"event":"refused","reason":…} or {"event":"failed","reason":…}
      [--owner PID --client IP --proxy IP]
        root only: name the owner and addresses (administration, tests)
  del --session UUID     remove a session's forwarding and purge its flows
  list [--json]          sessions, their ports and whether their owner runs
  reap [--all]           remove sessions whose owner has ended; --all (root):
                         every session, and our chains or table
  serve                  the DNAT service (root, one per host, systemd): owns
                         reverse sessions (issues their ids, keeps round robin
                         and faulty marks), removes a session's forwarding the
                         moment it ends and logs "Connection closed" with what
                         it carried, learns source ports, puts back rules a
                         firewall reload dropped, removes forwarded flows no
                         session owns (a failed purge's); serves /metrics and
                         /healthz at <metrics_address> (docs/metrics.md)
  drain [--reason TEXT]  root: take no new reverse sessions (running ones go
                         on; /healthz answers 503 so a load balancer sends new
                         clients elsewhere); kept across restarts
  undrain                root: take new sessions again

Only typed values are accepted (indexes, pids, IP literals, UUIDs), never
rule text. Backend: <dnat_backend> (iptables or nftables). See docs/dnat.md.
Exit status: 0 done, 1 refused or failed, 2 bad arguments.`;

const NETFILTER_PROGRAMS = [
  ...BACKEND_PROGRAMS,
  "conntrack",
  "logger",
  "sysctl",
  // /proc, which Deno opens only for a fully privileged process (the service reads it via libc).
  "head",
  "find",
];

/** The dnat mode. */
export const dnatMode: ModeCommand<DnatArgs, DnatPlatform> = {
  name: "dnat",
  summary: `  dnat       UDP DNAT: a session's privileged call (via sudo), the root DNAT
             service, and listing and reaping sessions`,
  usage: USAGE,
  parse(args) {
    const { rest, ...config } = takeConfigOption(args, "dnat");
    return { ...config, request: parseDnatArgs(rest) };
  },
  daemon: (args) => args.request.action === "serve",
  // Netfilter and conntrack tools, the config, its lock and log. The service alone (root,
  // started by the init system) may load libraries: libnftables (one netlink socket instead of
  // an nft run per change) and libc (its sessions' socket with the kernel's word on the peer,
  // pidfds, /proc), and use the network (to check a server a session reports unreachable). The
  // calls sessions and users make through sudo hold neither. Their uid says which log file is
  // theirs (root's own).
  needs: (args) => ({
    read: true,
    write: true,
    env: true,
    sys: true,
    ...(args.request.action === "serve"
      ? { ffi: [...LIBNFTABLES_PATHS, ...LIBC_PATHS], net: true as const }
      : {}),
    run: NETFILTER_PROGRAMS,
  }),
  async run(args, platform, context) {
    const [{ runDnat }, real] = await Promise.all([import("./run.ts"), platform()]);
    return await runDnat(args, real, context);
  },
};
