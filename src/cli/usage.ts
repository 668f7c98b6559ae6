/**
 * Help texts. They describe what the binary does today: modes still to come
 * say so.
 * @module
 */

import type { Mode } from "./parse.ts";

const MAIN = `xferproxy - open DMZ proxy for SSH-negotiated high-speed (FASP) transfers

Usage: xferproxy <mode> [options]

Modes:
  reverse    route an sshd session to an internal server and hand it to
             OpenSSH's ssh (sshd ForceCommand)
  forward    proxy daemon with an HTTP/HTTPS API for inside users, its users, and
             the ProxyCommand client (forward connect)
  check      validate the config, print the option spec, audit the host and users
  dnat       UDP DNAT: a session's privileged call (via sudo), the root DNAT
             service, and listing and reaping sessions
  version    print the version
  help       print this help, or "help <mode>" for one mode

Common options:
  --config PATH   config file (default: $XFERPROXY_CONFIG, else /etc/xferproxy/aspera.conf;
                  reverse mode and sudo calls never read XFERPROXY_CONFIG)
  -h, --help      help for the mode

Exit status: 0 success, 1 failure or problems found, 2 usage error.
Docs: README.md and docs/ (docs/configuration.md for every option).`;

const CHECK =
  `Usage: xferproxy check [config|defaults|system|users] [--config PATH] [--sshd-config PATH]
                       [--root DIR] [--json]
       xferproxy check upstreams [--user NAME] [--config PATH] [--json]

  config     validate the config file; prints OK or every problem (like asuserdata -v)
  defaults   print every option with its default and a one-line description (like asuserdata -s)
  system     audit the host: ip_forward, netfilter tools, sudoers, SELinux, /etc/hosts,
             sshd_config, known_hosts, keyfiles, the state directory, the DNAT service,
             sessions whose owner has ended, /usr/bin/ssh
  users      audit the accounts (like asp-check): full-access, proxy and insecure users
  upstreams  log in to every internal server of every rule with its key and account,
             against the pinned host key (not part of a plain "check")
  (none)     config, system and users with a summary

Options:
  --config PATH        config file (default: $XFERPROXY_CONFIG, else /etc/xferproxy/aspera.conf)
  --sshd-config PATH   sshd_config to audit (default /etc/ssh/sshd_config)
  --root DIR           audit a mounted image or fixture tree: every path is read inside DIR
                       and no program runs
  --user NAME          check upstreams: the account for rules that use each user's own
  --json               {"ok", "findings": [{id, severity, message, fix}]}

Check mode never writes. Only check upstreams opens connections; the other checks may run
iptables, iptables-save, nft, conntrack, sysctl and ps on the live system. Every finding:
docs/check.md. Exit status: 0 clean (warnings allowed), 1 an error was found, 2 usage error.`;

const REVERSE = `Usage: xferproxy reverse [--config PATH]

Run by OpenSSH sshd as ForceCommand, once per session, as the logged-in user
(see docs/reverse.md for the sshd_config block). It decides everything, then
replaces itself with OpenSSH's ssh to the internal server chosen by the first
matching <rule>, which carries the session from there:

  SSH_CONNECTION        client and proxy address (set by sshd; required)
  SSH_ORIGINAL_COMMAND  the client's command; sshd's sftp-server line maps to
                        the sftp subsystem; none = interactive shell
  USER                  the proxy user; <squash_user> replaces it upstream
  XFERPROXY_HOST        optional name[:port] the client dialled, for host_domain
                        rules (ssh -o SetEnv=XFERPROXY_HOST=…; AcceptEnv needed)

The config comes from --config or /etc/xferproxy/aspera.conf, never from the
environment. Only allowed commands run (<allowed_commands>). Each candidate
server is probed (connect, SSH version, host key pinned in <known_hosts>) within
<connect_timeout>; one that does not answer is marked faulty for 120 s and the
next is tried. FASP commands (<udp_commands>: ascp, ascp4, async) get kernel UDP
forwarding first, through "sudo xferproxy dnat add". Logs go to syslog or
<log_directory>; ssh's own messages to syslog as xferproxy-ssh; never to the
client.

Exit status: ssh's, which is the upstream command's; 1 when the command is
refused; 255 for proxy and connection errors (as ssh).`;

const FORWARD = `Usage: xferproxy forward [serve] [--config PATH]
       xferproxy forward user add NAME [--password-stdin] [--allow DEST,...] [--admin]
       xferproxy forward user del NAME | user list
       xferproxy forward connect --proxy dnat[s]://user[:pass]@host[:port] DEST [PORT]
                                 [--udp-port N] [--print-mapping] [--cacert FILE]

serve (default): the forward-proxy daemon. It listens as <server> says
(enable_http/http_port 9091, enable_https/https_port 9092), allocates a proxy
port per session from <port_range_low>-<port_range_high> and installs TCP and
UDP DNAT to the destination, accepted only from the caller, masqueraded.
Without <cert_file>/<key_file>, HTTPS uses a self-signed certificate made once
in <state_directory>/forward. Refuses to start when <proxy><enabled> is false.
SIGTERM removes every rule.

user: API users in <users_file> (scrypt hashes, root-only). Without
--password-stdin a password is generated and printed once. --allow takes
CIDRs, host names or *; private and the proxy's own ranges open only for a
prefix at least as specific as the range.

connect: the client, usable as OpenSSH ProxyCommand (%h %p). Password from the
URL, XFERPROXY_PROXY_PASS or ASPERA_PROXY_PASS. --print-mapping prints the
session as JSON and holds it until stdin closes.

See docs/forward-api.md. Exit status: 0 success, 1 failure, 2 usage error;
connect exits 255 when the proxy refuses or cannot be reached.`;

const DNAT = `Usage: xferproxy dnat <action> [--config PATH]

The only code that changes netfilter. Reverse sessions run "add" through sudo
(sudoers: %xferproxy ALL=(root) NOPASSWD: /usr/local/bin/xferproxy dnat *);
through sudo only /etc/xferproxy/aspera.conf counts (--config is ignored), it
must be root's, and a caller sees and changes only its own sessions.

  add --session UUID --owner PID --client IP --proxy IP --rule N --host I
      --server IP:PORT
        install one session's UDP forwarding and return. The destination and
        ports come from rule N, host I (0-based) of the config, which must be
        the server given; the owner must be the caller's SSH session from that
        client to that proxy address. The rules live as long as the owner
        (pid and start time)
  del --session UUID     remove a session's forwarding and purge its flows
  list [--json]          sessions, their ports and whether their owner runs
  reap [--all]           remove sessions whose owner has ended; --all (root):
                         every session, and our chains or table
  serve                  the DNAT service (root, one per host, systemd): learns
                         source ports, removes ended sessions' forwarding within
                         2 s logging what it carried, puts back rules a firewall
                         reload dropped

Only typed values are accepted (UUIDs, pids, IP literals, numbers), never
rule text. Backend: <dnat_backend> (iptables or nftables). See docs/dnat.md.
Exit status: 0 done, 1 refused or failed, 2 bad arguments.`;

const VERSION = `Usage: xferproxy version

Prints the xferproxy version and the Deno runtime it runs on.`;

const HELP = `Usage: xferproxy help [mode]

Prints the overview, or the help of one mode.`;

const TEXTS: Record<Mode, string> = {
  reverse: REVERSE,
  forward: FORWARD,
  check: CHECK,
  dnat: DNAT,
  version: VERSION,
  help: HELP,
};

/** The help text for a mode, or the overview. */
export function usage(topic?: Mode): string {
  return topic ? TEXTS[topic] : MAIN;
}

/** The second line of a usage error: where to read more. */
export function usageHint(topic?: Mode): string {
  return topic ? `Try "xferproxy ${topic} --help".` : `Try "xferproxy --help".`;
}
