/**
 * Where xferproxy is installed and which package holds each program it runs:
 * the one place install paths and install hints come from (docs, help texts
 * and the packages' dependencies are tested against it).
 * @module
 */

/** Where the .deb and .rpm install the executable. */
export const PACKAGED_PATH = "/usr/bin/xferproxy";

/** Where docs/install.md puts the single file when it is installed by hand. */
export const COPIED_PATH = "/usr/local/bin/xferproxy";

/** The iptables programs the DNAT code runs, IPv4 and IPv6. */
export const IPTABLES_PROGRAMS: readonly string[] = [
  "iptables",
  "iptables-save",
  "iptables-restore",
  "ip6tables",
  "ip6tables-save",
  "ip6tables-restore",
];

/**
 * Where the system tools live when PATH misses them: root's PATH after Debian's `su` without
 * `-` has no sbin directory, and Deno grants a program by name only where PATH finds it at
 * start. So deno.json grants each of `SBIN_PROGRAMS` by name and in each of these, and the
 * runner (platform/runner.ts) looks there too.
 */
export const SBIN_DIRECTORIES: readonly string[] = ["/usr/sbin", "/sbin"];

/** The programs xferproxy runs that distributions install in an sbin directory. */
export const SBIN_PROGRAMS: readonly string[] = [
  ...IPTABLES_PROGRAMS,
  "nft",
  "conntrack",
  "sysctl",
  "ip",
  "sshd",
];

/** The package holding a program (or library) on Debian and on Red Hat. */
export interface PackageNames {
  readonly debian: string;
  readonly redHat: string;
  /** In every base system of both, so never a dependency to declare. */
  readonly base?: true;
}

const IPTABLES = { debian: "iptables", redHat: "iptables" };

const PACKAGES: Readonly<Record<string, PackageNames>> = {
  ...Object.fromEntries(IPTABLES_PROGRAMS.map((program) => [program, IPTABLES])),
  ip: { debian: "iproute2", redHat: "iproute" },
  conntrack: { debian: "conntrack", redHat: "conntrack-tools" },
  nft: { debian: "nftables", redHat: "nftables" },
  libnftables: { debian: "libnftables1", redHat: "nftables" },
  sysctl: { debian: "procps", redHat: "procps-ng" },
  ps: { debian: "procps", redHat: "procps-ng" },
  ssh: { debian: "openssh-client", redHat: "openssh-clients" },
  sshd: { debian: "openssh-server", redHat: "openssh-server" },
  sudo: { debian: "sudo", redHat: "sudo" },
  openssl: { debian: "openssl", redHat: "openssl" },
  // Runs the packages' /etc/logrotate.d/xferproxy (the daemons reopen their log on SIGHUP).
  logrotate: { debian: "logrotate", redHat: "logrotate" },
  logger: { debian: "bsdutils", redHat: "util-linux", base: true },
  cat: { debian: "coreutils", redHat: "coreutils", base: true },
  head: { debian: "coreutils", redHat: "coreutils", base: true },
  find: { debian: "findutils", redHat: "findutils", base: true },
};

/** The packages holding a program, if the table knows it. */
export function packageOf(program: string): PackageNames | undefined {
  return PACKAGES[program];
}

/** `apt-get install … (Debian) or yum install … (Red Hat)` for a program. */
export function installHint(program: string): string {
  const pkg = PACKAGES[program] ?? { debian: program, redHat: program };
  return `apt-get install ${pkg.debian} (Debian) or yum install ${pkg.redHat} (Red Hat)`;
}
