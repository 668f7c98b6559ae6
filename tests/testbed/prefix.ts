/**
 * The one prefix every bed, the demo and the benchmarks name their
 * namespaces, accounts and group with (default "xpt"). Set
 * XFERPROXY_TEST_PREFIX to run two checkouts side by side on one host: each
 * creates, uses and kills only what carries its own prefix. Addresses need
 * no prefix: they exist only inside the namespaces a bed creates.
 * @module
 */

const DEFAULT_PREFIX = "xpt";

/** The prefix: 2-5 lower-case letters and digits, starting with a letter. */
export function testPrefix(value: string | undefined): string {
  if (value === undefined || value === "") return DEFAULT_PREFIX;
  if (!/^[a-z][a-z0-9]{1,4}$/.test(value)) {
    throw new Error(
      `XFERPROXY_TEST_PREFIX must be 2-5 lower-case letters or digits starting with a letter, got ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}

/** This run's prefix. */
export const PREFIX = testPrefix(Deno.env.get("XFERPROXY_TEST_PREFIX"));

/** A name for a thing this run creates: `<prefix>_<what>` (accounts, the group). */
export function prefixed(what: string): string {
  return `${PREFIX}_${what}`;
}

/** A fresh network namespace name: the prefix, 6 random hex digits, a role suffix. */
export function namespaceName(role: string): string {
  return `${PREFIX}${crypto.randomUUID().slice(0, 6)}${role}`;
}
