/**
 * Help texts. They describe what the binary does today: modes still to come
 * say so.
 * @module
 */

import type { Mode } from "./parse.ts";

const MAIN = `xferproxy - open DMZ proxy for SSH-negotiated high-speed (FASP) transfers

Usage: xferproxy <mode> [options]

Modes:
  reverse    bridge an sshd session to an internal server (sshd ForceCommand)
  forward    proxy daemon with an HTTP/HTTPS API for inside users              [not implemented yet]
  check      validate the config, print the option spec, audit the host
  dnat       add, remove, list and reap UDP DNAT rules (via sudo)            [not implemented yet]
  version    print the version
  help       print this help, or "help <mode>" for one mode

Common options:
  --config PATH   config file (default: $XFERPROXY_CONFIG, else /etc/xferproxy/aspera.conf)
  -h, --help      help for the mode

Exit status: 0 success, 1 failure or problems found, 2 usage error.
Docs: README.md and docs/ (docs/configuration.md for every option).`;

const CHECK =
  `Usage: xferproxy check [config|defaults|system|users] [--config PATH] [--json] [--root DIR]

  config     validate the config file; prints OK or every problem (like asuserdata -v)
  defaults   print every option with its default and a one-line description (like asuserdata -s)
  system     audit the host (ip_forward, netfilter tools, sudoers, sshd_config)  [not implemented yet]
  users      audit the proxy users (like asp-check)                               [not implemented yet]
  (none)     all of the above with a summary                                      [not implemented yet]

Options:
  --config PATH   config file (default: $XFERPROXY_CONFIG, else /etc/xferproxy/aspera.conf)
  --json          machine-readable findings                                     [system/users only, not implemented yet]
  --root DIR      audit a mounted image or fixture tree instead of /            [system/users only, not implemented yet]

Check mode only reads: it holds no network, write or run permission.
Exit status: 0 clean (warnings allowed), 1 an error was found, 2 usage error.`;

const REVERSE = `Usage: xferproxy reverse [--config PATH]

Run by OpenSSH sshd as ForceCommand, once per session, as the logged-in user
(see docs/reverse.md for the sshd_config block). It bridges the client's
session to an internal server chosen by the first matching <rule>:

  SSH_CONNECTION        client and proxy address (set by sshd; required)
  SSH_ORIGINAL_COMMAND  the client's command; sshd's sftp-server line maps to
                        the sftp subsystem; none = interactive shell
  USER                  the proxy user; <squash_user> replaces it upstream
  XFERPROXY_HOST        optional name[:port] the client dialled, for host_domain
                        rules (ssh -o SetEnv=XFERPROXY_HOST=…; AcceptEnv needed)

Only allowed commands run (<allowed_commands>; default ascp, ascp4, scp,
rsync --server, subsystem:sftp). The internal server's host key must be in
<known_hosts>. Logs go to syslog or <log_directory>, never to the client.

Exit status: the upstream command's, 1 when the command is refused, 255 for
proxy or connection errors.`;

const FORWARD = `Usage: xferproxy forward [--config PATH]

The forward-proxy daemon and its client helper.
Not implemented yet: this build exits with status 1.`;

const DNAT = `Usage: xferproxy dnat add|del|list|reap [--config PATH]

The only code that changes netfilter, run through sudo by reverse sessions.
Not implemented yet: this build exits with status 1.`;

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
