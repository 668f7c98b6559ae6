/**
 * The xferproxy version, from deno.json so there is one place to bump it.
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/** The xferproxy release version. */
export const VERSION: string = denoJson.version;

/** Programs the permission set lets xferproxy run, from deno.json. */
export const RUNNABLE: readonly string[] = denoJson.permissions.xferproxy.run;

/** Libraries the permission set lets xferproxy load through FFI, from deno.json. */
export const LOADABLE: readonly string[] = denoJson.permissions.xferproxy.ffi;
