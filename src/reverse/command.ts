/**
 * `xferproxy reverse`: sshd's ForceCommand, once per session, as the
 * logged-in user. Its name, help, arguments and permissions; the session
 * itself is run.ts, loaded only when it runs.
 * @module
 */

import { CONFIG_OPTION, type ConfigArg, parseStrict, withConfig } from "../cli/parse.ts";
import type { ModeCommand } from "../cli/command.ts";
import { EXIT } from "../cli/exit.ts";
import { REVERSE_NEEDS } from "./needs.ts";
import type { ReversePlatform } from "./run.ts";

const USAGE = `Usage: xferproxy reverse [--config PATH]

Run by OpenSSH sshd as ForceCommand, once per session, as the logged-in user
(see docs/reverse.md for the sshd_config block). While the DNAT service runs,
the service decides the session with its own config (the session only reads
its keyfile and known_hosts when asked) and logs its lines; otherwise, or with
a config file other than the service's, the session decides itself. Then it
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
next is tried. Each session registers with the DNAT service over its socket
(which names the session from the kernel, issues its id, and logs its closing
line; USER must be the account that connected); FASP commands (<udp_commands>:
ascp, ascp4, async) get kernel UDP forwarding first. While the service is down, round robin uses the shared file
and FASP commands run "sudo xferproxy dnat add". Logs go to syslog or
<log_directory>; ssh's own messages to syslog as xferproxy-ssh; never to the
client.

Exit status: ssh's, which is the upstream command's; 1 when the command is
refused; 255 for proxy and connection errors (as ssh).`;

/** The reverse mode. */
export const reverseMode: ModeCommand<ConfigArg, ReversePlatform> = {
  name: "reverse",
  summary: `  reverse    route an sshd session to an internal server and hand it to
             OpenSSH's ssh (sshd ForceCommand)`,
  usage: USAGE,
  parse(args) {
    const { values } = parseStrict(args, "reverse", CONFIG_OPTION, false);
    return withConfig({}, values.config);
  },
  needs: () => REVERSE_NEEDS,
  async run(args, platform, context) {
    const code = import("./run.ts");
    let real: ReversePlatform | undefined;
    try {
      const [{ runReverse }, loaded] = await Promise.all([code, platform()]);
      real = loaded;
      return await runReverse(args, real, context);
    } catch (error) {
      // Never a stack trace on the client's stderr: the stack goes to syslog, where it can.
      context.output.err("xferproxy: internal error; see the proxy log\n");
      // Should syslog itself fail, no place is left to say so but the client's stderr.
      if (real) await (await code).logUnexpected(real, error).catch(() => undefined);
      return EXIT.proxyError;
    }
  },
};
