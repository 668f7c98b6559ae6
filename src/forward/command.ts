/**
 * `xferproxy forward`: the forward-proxy daemon, its API users, and the
 * ProxyCommand client. Its name, help, arguments and permissions; the
 * actions run in run.ts, loaded only when they run.
 * @module
 */

import { takeConfigOption } from "../cli/parse.ts";
import type { ModeCommand } from "../cli/command.ts";
import { BACKEND_PROGRAMS } from "../dnat/backends.ts";
import { type ForwardArgs, parseForwardArgs } from "./args.ts";
import type { ForwardPlatform } from "./run.ts";

const USAGE = `Usage: xferproxy forward [serve] [--config PATH]
       xferproxy forward user add NAME [--password-stdin] [--allow DEST,...] [--admin]
       xferproxy forward user del NAME | user list
       xferproxy forward connect --proxy dnat[s]://user@host[:port] DEST [PORT]
                                 [--password-file FILE] [--udp-port N] [--print-mapping]
                                 [--cacert FILE]

serve (default): the forward-proxy daemon. It listens as <server> says
(enable_http/http_port 9091, enable_https/https_port 9092), allocates a proxy
port per session from <port_range_low>-<port_range_high> and installs TCP and
UDP DNAT to the destination, accepted only from the caller, masqueraded.
Without <cert_file>/<key_file>, HTTPS uses a self-signed certificate made once
in <state_directory>/forward. Refuses to start when <proxy><enabled> is false.
SIGTERM removes every rule; SIGHUP reopens the log file (logrotate).

user: API users in <users_file> (scrypt hashes, root-only). Without
--password-stdin a password is generated and printed once. --allow takes
CIDRs, host names or *; private and the proxy's own ranges open only for a
prefix at least as specific as the range.

connect: the client, usable as OpenSSH ProxyCommand (%h %p). The password comes
from --password-file (its first line; keep the file mode 600), else from the
environment: XFERPROXY_PROXY_PASS, then ASPERA_PROXY_PASS. A password in the
URL (dnat://user:pass@host) still works, but every user of the host sees it in
ps: it prints a warning. --print-mapping prints the session as JSON and holds
it until stdin closes.

See docs/forward-api.md. Exit status: 0 success, 1 failure, 2 usage error;
connect exits 255 when the proxy refuses or cannot be reached.`;

/** The forward mode. */
export const forwardMode: ModeCommand<ForwardArgs, ForwardPlatform> = {
  name: "forward",
  summary: `  forward    proxy daemon with an HTTP/HTTPS API for inside users, its users, and
             the ProxyCommand client (forward connect)`,
  usage: USAGE,
  parse(args) {
    const { rest, ...config } = takeConfigOption(args, "forward");
    return { ...config, command: parseForwardArgs(rest) };
  },
  daemon: ({ command }) => command.action === "serve",
  needs({ command }) {
    if (command.action === "connect") return { read: true, net: true, env: true };
    if (command.action !== "serve") return { read: true, write: true, env: true };
    // The daemon: API sockets, its DNAT rules, users file, logs; openssl makes the default
    // HTTPS certificate when none is configured. Its uid says which log file is its (root's own).
    return {
      read: true,
      write: true,
      net: true,
      env: true,
      sys: true,
      run: [
        ...BACKEND_PROGRAMS,
        "conntrack",
        "logger",
        "sysctl",
        "head",
        "ip",
        "openssl",
      ],
    };
  },
  async run(args, platform, context) {
    const [{ runForward }, real] = await Promise.all([import("./run.ts"), platform()]);
    return await runForward(args, real, context);
  },
};
