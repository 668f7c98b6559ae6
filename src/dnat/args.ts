/**
 * `xferproxy dnat …` arguments, parsed strictly: typed values only (UUIDs,
 * pids, IP literals, small indexes), never rule text. Anything else is
 * refused before the helper touches netfilter.
 * @module
 */

import { parseArgs } from "node:util";
import { parseIp } from "../net/ip.ts";
import { UsageError } from "../cli/parse.ts";
import type { AddRequest } from "./authorize.ts";

/** A parsed helper command. */
export type DnatCommand =
  | { readonly action: "add"; readonly request: AddRequest; readonly hold: boolean }
  | { readonly action: "del"; readonly id: string }
  | { readonly action: "list"; readonly json: boolean }
  | { readonly action: "reap"; readonly all: boolean };

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

/**
 * Parses the words after `xferproxy dnat`.
 * @throws {UsageError}
 */
export function parseDnatArgs(args: readonly string[]): DnatCommand {
  const [action, ...rest] = args;
  const options = {
    session: { type: "string" },
    owner: { type: "string" },
    client: { type: "string" },
    proxy: { type: "string" },
    rule: { type: "string" },
    host: { type: "string" },
    hold: { type: "boolean" },
    json: { type: "boolean" },
    all: { type: "boolean" },
  } as const;
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: rest, options, strict: true, allowPositionals: false }));
  } catch (error) {
    refuse(`bad arguments for dnat ${action ?? ""}: ${(error as Error).message.split(".")[0]}`);
  }
  const str = (k: string) => values[k] as string | undefined;
  const allowed = (keys: string[]) => {
    const extra = Object.keys(values).filter((k) => !keys.includes(k));
    if (extra.length) refuse(`dnat ${action} does not take --${extra[0]}`);
  };
  switch (action) {
    case "add":
      allowed(["session", "owner", "client", "proxy", "rule", "host", "hold"]);
      return {
        action,
        hold: values.hold === true,
        request: {
          id: uuid("session", str("session")),
          owner: integer("owner", str("owner"), 1, 4194304),
          client: ip("client", str("client")),
          proxy: ip("proxy", str("proxy")),
          rule: integer("rule", str("rule"), 1, 10000),
          host: integer("host", str("host"), 0, 1000),
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
    default:
      refuse(
        action === undefined
          ? "dnat needs an action: add, del, list or reap"
          : `unknown dnat action ${JSON.stringify(action)}; expected add, del, list or reap`,
      );
  }
}
