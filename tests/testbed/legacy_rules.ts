/**
 * The iptables rules the plan before the fixed forwarding rules wrote for a
 * session (a MASQUERADE and an ACCEPT matched on the conntrack original
 * tuple), as iptables-save prints them: what a proxy upgraded with
 * sessions live still holds. Pure: unit tests import it too.
 * @module
 */

/** What the legacy rules name of a session. */
export interface LegacySession {
  readonly id: string;
  readonly owner: { readonly pid: number; readonly start: number };
  readonly client: string;
  readonly clientPort?: number;
  readonly proxy: string;
  readonly proxyPort: number;
}

/** `-A XFERPROXY-POST …` and `-A XFERPROXY-FWD …` of one UDP session. */
export function legacyIptablesRules(s: LegacySession): [post: string, fwd: string] {
  const tag = `-m comment --comment "xferproxy:${s.id}:${s.owner.pid}:${s.owner.start}"`;
  const sport = s.clientPort === undefined ? "" : ` --ctorigsrcport ${s.clientPort}`;
  const flows =
    `-p udp -m conntrack --ctstate DNAT --ctorigsrc ${s.client} --ctorigdst ${s.proxy}${sport} --ctorigdstport ${s.proxyPort} ${tag}`;
  return [`-A XFERPROXY-POST ${flows} -j MASQUERADE`, `-A XFERPROXY-FWD ${flows} -j ACCEPT`];
}
