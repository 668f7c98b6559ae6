/**
 * `xferproxy dnat …` arguments, parsed strictly: typed values only (UUIDs,
 * pids, IP literals, small indexes), never rule text. Anything else is
 * refused before the helper touches netfilter.
 * @module
 */

import { parseArgs } from "node:util";
import { parseIp } from "../net/ip.ts";
import { parseIpEndpoint } from "../net/endpoint.ts";
import { UsageError } from "../cli/parse.ts";
import { ADD_OPTIONS, type AddRequest } from "./call.ts";

/** A parsed helper command. */
export type DnatCommand =
  | { readonly action: "add"; readonly request: AddRequest }
  | { readonly action: "del"; readonly id: string }
  | { readonly action: "list"; readonly json: boolean }
  | { readonly action: "reap"; readonly all: boolean }
  | { readonly action: "serve" };

/** The actions, as `dnat --help` lists them. */
export const DNAT_ACTIONS = ["add", "del", "list", "reap", "serve"] as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function refuse(message: string): never {
  throw new UsageError(message, "dnat");
}

function uuid(name: string, value: string | undefined): string {
  if (value === undefined) refuse(`--${name} is required`);
  if (!UUID.test(value)) {
    refuse(`--${name} must be a lower-case UUID, got ${JSON.stringify(value)}`);
  }
  return value;
}

function integer(name: string, value: string | undefined, min: number, max: number): number {
  if (value === undefined) refuse(`--${name} is required`);
  if (!/^\d{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
    refuse(`--${name} must be an integer ${min}-${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function ip(name: string, value: string | undefined) {
  if (value === undefined) refuse(`--${name} is required`);
  const parsed = parseIp(value);
  if (!parsed) refuse(`--${name} must be an IP address, got ${JSON.stringify(value)}`);
  return parsed;
}

function endpoint(name: string, value: string | undefined) {
  if (value === undefined) refuse(`--${name} is required`);
  const parsed = parseIpEndpoint(value, 22);
  if (typeof parsed === "string" || !/:\d+$/.test(value)) {
    refuse(`--${name} must be ip:port, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

/**
 * Parses the words after `xferproxy dnat`.
 * @throws {UsageError}
 */
export function parseDnatArgs(args: readonly string[]): DnatCommand {
  const [action, ...rest] = args;
  const options = {
    ...Object.fromEntries(ADD_OPTIONS.map((o) => [o, { type: "string" }])),
    json: { type: "boolean" },
    all: { type: "boolean" },
  } as Record<string, { type: "string" | "boolean" }>;
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: rest, options, strict: true, allowPositionals: false }));
  } catch (error) {
    refuse(`bad arguments for dnat ${action ?? ""}: ${(error as Error).message.split(".")[0]}`);
  }
  const str = (k: string) => values[k] as string | undefined;
  const allowed = (keys: readonly string[]) => {
    const extra = Object.keys(values).filter((k) => !keys.includes(k));
    if (extra.length) refuse(`dnat ${action} does not take --${extra[0]}`);
  };
  switch (action) {
    case "add":
      allowed(ADD_OPTIONS);
      return {
        action,
        request: {
          id: uuid("session", str("session")),
          owner: integer("owner", str("owner"), 1, 4194304),
          client: ip("client", str("client")),
          proxy: ip("proxy", str("proxy")),
          rule: integer("rule", str("rule"), 1, 10000),
          host: integer("host", str("host"), 0, 1000),
          server: endpoint("server", str("server")),
        },
      };
    case "del":
      allowed(["session"]);
      return { action, id: uuid("session", str("session")) };
    case "list":
      allowed(["json"]);
      return { action, json: values.json === true };
    case "reap":
      allowed(["all"]);
      return { action, all: values.all === true };
    case "serve":
      allowed([]);
      return { action };
    default:
      refuse(
        action === undefined
          ? `dnat needs an action: ${DNAT_ACTIONS.join(", ")}`
          : `unknown dnat action ${JSON.stringify(action)}; expected ${DNAT_ACTIONS.join(", ")}`,
      );
  }
}
