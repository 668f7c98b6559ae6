/**
 * Exit statuses (DESIGN.md): 0 success, 1 failure or problems found, 2 usage
 * error; reverse sessions use ssh's 255 for proxy and connection errors.
 * @module
 */

/** The exit statuses every mode uses. */
export const EXIT = { ok: 0, failure: 1, usage: 2, proxyError: 255 } as const;
