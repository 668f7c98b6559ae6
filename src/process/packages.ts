/**
 * Which package holds each program xferproxy runs: the one place install
 * hints come from.
 * @module
 */

/** The iptables programs the DNAT code runs, IPv4 and IPv6. */
export const IPTABLES_PROGRAMS: readonly string[] = [
  "iptables",
  "iptables-save",
  "iptables-restore",
  "ip6tables",
  "ip6tables-save",
  "ip6tables-restore",
];

const IPTABLES = { debian: "iptables", redHat: "iptables" };

const PACKAGES: Readonly<Record<string, { readonly debian: string; readonly redHat: string }>> = {
  ...Object.fromEntries(IPTABLES_PROGRAMS.map((program) => [program, IPTABLES])),
  ip: { debian: "iproute2", redHat: "iproute" },
  conntrack: { debian: "conntrack", redHat: "conntrack-tools" },
  nft: { debian: "nftables", redHat: "nftables" },
  sysctl: { debian: "procps", redHat: "procps-ng" },
  ps: { debian: "procps", redHat: "procps-ng" },
  ssh: { debian: "openssh-client", redHat: "openssh-clients" },
  openssl: { debian: "openssl", redHat: "openssl" },
};

/** `apt-get install … (Debian) or yum install … (Red Hat)` for a program. */
export function installHint(program: string): string {
  const pkg = PACKAGES[program] ?? { debian: program, redHat: program };
  return `apt-get install ${pkg.debian} (Debian) or yum install ${pkg.redHat} (Red Hat)`;
}
