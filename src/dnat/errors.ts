/**
 * The one line an administrator (or the session's log) reads when the DNAT
 * helper fails, saying what to fix.
 * @module
 */

import { CommandNotFoundError } from "../process/runner.ts";

const PACKAGES: Readonly<Record<string, { debian: string; redHat: string }>> = {
  conntrack: { debian: "conntrack", redHat: "conntrack-tools" },
  nft: { debian: "nftables", redHat: "nftables" },
  sysctl: { debian: "procps", redHat: "procps-ng" },
  ps: { debian: "procps", redHat: "procps-ng" },
};

/** The line for an error the helper expects, or undefined for a bug. */
export function describeHelperError(
  error: unknown,
  expected: ReadonlyArray<new (...args: never[]) => Error>,
): string | undefined {
  if (error instanceof CommandNotFoundError) {
    // Aspera Proxy's wording, followed by the fix.
    const pkg = PACKAGES[error.program] ?? { debian: "iptables", redHat: "iptables" };
    return `ERR Failed to initialize proxy service: ${error.program} is not installed; ` +
      `install it: apt-get install ${pkg.debian} (Debian) or yum install ${pkg.redHat} (Red Hat)`;
  }
  if (expected.some((kind) => error instanceof kind)) return (error as Error).message;
  return undefined;
}
