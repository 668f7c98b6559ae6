/**
 * The test beds, shared by the end-to-end tests, the benchmarks and the
 * demo: real OpenSSH, iptables/nftables and conntrack in network namespaces
 * the bed creates and removes. Addresses come only from 198.18.0.0/15 and
 * 2001:db8::/32 and exist only inside those namespaces.
 *
 * - reverse_bed.ts: client → proxy (sshd + xferproxy reverse) → servers A and B
 * - forward_bed.ts: inside → proxy (xferproxy forward) → outside
 * - scale_bed.ts: clients → director (examples/scale-out/director.sh) → two proxy nodes
 * - vrrp_bed.ts: clients → two directors sharing the VIP with keepalived → the scale bed's nodes
 * - udp.ts: UDP echo and sink sessions standing in for ascp's data flow
 * - sshd.ts, netns.ts: the parts both beds are built from
 * - exec.ts, paths.ts: running programs and the shipped binary
 * - prefix.ts: the names this run creates (XFERPROXY_TEST_PREFIX)
 * @module
 */

export * from "./exec.ts";
export * from "./paths.ts";
export * from "./netns.ts";
export * from "./sshd.ts";
export * from "./reverse_bed.ts";
export * from "./forward_bed.ts";
export * from "./scale_bed.ts";
export * from "./vrrp_bed.ts";
export * from "./udp.ts";
export * from "./prefix.ts";
