/**
 * What earlier versions wrote for a session, as a proxy upgraded with
 * sessions live still holds it: the iptables plan's per-session MASQUERADE and
 * ACCEPT (before the fixed forwarding rules), and the nftables table's flow
 * sets (before the mark at our DNAT). Pure: unit tests import it too.
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

/**
 * `-A XFERPROXY-POST …` and `-A XFERPROXY-FWD …` of one UDP session, matched on the conntrack
 * original tuple, as iptables-save prints them.
 */
export function legacyIptablesRules(s: LegacySession): [post: string, fwd: string] {
  const tag = `-m comment --comment "xferproxy:${s.id}:${s.owner.pid}:${s.owner.start}"`;
  const sport = s.clientPort === undefined ? "" : ` --ctorigsrcport ${s.clientPort}`;
  const flows =
    `-p udp -m conntrack --ctstate DNAT --ctorigsrc ${s.client} --ctorigdst ${s.proxy}${sport} --ctorigdstport ${s.proxyPort} ${tag}`;
  return [`-A XFERPROXY-POST ${flows} -j MASQUERADE`, `-A XFERPROXY-FWD ${flows} -j ACCEPT`];
}

/**
 * An `nft -f` script turning our current IPv4 table back into the layout the
 * version before marks at DNAT wrote (flow sets matched on the translated
 * tuple, the mark set in forward, masquerade by set), with the flow element of
 * one UDP session to `server`:`serverPort`: what a proxy upgraded with
 * sessions live still holds. The maps are the same in both layouts.
 */
export function legacyNftTable(client: string, server: string, serverPort: number): string {
  const mark = "0x78700000";
  const set = (name: string) =>
    `add set ip xferproxy ${name} { type ipv4_addr . ipv4_addr . inet_service; flags timeout; }`;
  const rule = (chain: string, text: string) => `add rule ip xferproxy ${chain} ${text}`;
  return [
    "flush chain ip xferproxy prerouting",
    "flush chain ip xferproxy postrouting",
    "flush chain ip xferproxy forward",
    set("flows"),
    set("tcp_flows"),
    rule(
      "prerouting",
      "meta l4proto udp dnat ip to ip saddr . udp sport . ip daddr . udp dport map @dnat_port",
    ),
    rule(
      "prerouting",
      "meta l4proto udp dnat ip to ip saddr . ip daddr . udp dport map @dnat_addr",
    ),
    rule("prerouting", "meta l4proto tcp dnat ip to ip saddr . ip daddr . tcp dport map @dnat_tcp"),
    rule("postrouting", "ct status dnat ip saddr . ip daddr . udp dport @flows masquerade"),
    rule("postrouting", "ct status dnat ip saddr . ip daddr . tcp dport @tcp_flows masquerade"),
    rule(
      "forward",
      `ct status dnat ip saddr . ip daddr . udp dport @flows ct mark set ${mark} accept`,
    ),
    rule(
      "forward",
      `ct status dnat ip daddr . ip saddr . udp sport @flows ct mark set ${mark} accept`,
    ),
    rule(
      "forward",
      `ct status dnat ip saddr . ip daddr . tcp dport @tcp_flows ct mark set ${mark} accept`,
    ),
    rule(
      "forward",
      `ct status dnat ip daddr . ip saddr . tcp sport @tcp_flows ct mark set ${mark} accept`,
    ),
    `add element ip xferproxy flows { ${client} . ${server} . ${serverPort} timeout 600s }`,
    "",
  ].join("\n");
}
