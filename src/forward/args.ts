/**
 * `xferproxy forward …` subcommands, parsed strictly.
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { type ConfigArg, UsageError } from "../cli/parse.ts";
import { parsePort } from "../net/endpoint.ts";
import { checkAllowEntry, checkUserName } from "./user_names.ts";

/** `xferproxy forward`'s arguments. */
export interface ForwardArgs extends ConfigArg {
  readonly command: ForwardCommand;
}

/** A parsed forward command. */
export type ForwardCommand =
  | { readonly action: "serve" }
  | {
    readonly action: "user-add";
    readonly name: string;
    readonly passwordStdin: boolean;
    readonly allow: readonly string[];
    readonly admin: boolean;
  }
  | { readonly action: "user-del"; readonly name: string }
  | { readonly action: "user-list" }
  | {
    readonly action: "connect";
    readonly proxy: ProxyUrl;
    readonly destination: string;
    readonly sshPort: number;
    readonly udpPort: number;
    readonly printMapping: boolean;
    readonly cacert?: string;
    /** Where the password is, instead of the URL (where `ps` shows it to everyone). */
    readonly passwordFile?: string;
  };

/** `dnat[s]://user[:pass]@host[:port]`. */
export interface ProxyUrl {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
}

function refuse(message: string): never {
  throw new UsageError(message, "forward");
}

/** Parses a proxy URL; the default port is 9091 (dnat) or 9092 (dnats), as Aspera Proxy's node API. */
export function parseProxyUrl(text: string): ProxyUrl {
  const m = /^(dnats?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(
    text,
  );
  if (!m) refuse(`--proxy must look like dnat[s]://user[:password]@host[:port], got "${text}"`);
  const secure = m[1] === "dnats";
  const port = m[5] === undefined ? (secure ? 9092 : 9091) : parsePort(m[5]);
  if (port === undefined) refuse(`--proxy port must be 1-65535, got "${m[5]}"`);
  const user = decodeURIComponent(m[2] ?? "");
  return {
    secure,
    host: (m[4] as string).replace(/^\[|\]$/g, ""),
    port,
    user,
    ...(m[3] !== undefined ? { password: decodeURIComponent(m[3]) } : {}),
  };
}

/**
 * Parses the words after `xferproxy forward`.
 * @throws {UsageError}
 */
export function parseForwardArgs(args: readonly string[]): ForwardCommand {
  const [first, second, ...rest] = args;
  if (first === undefined || first === "serve") {
    if (second !== undefined) refuse(`unexpected argument "${second}" for forward serve`);
    return { action: "serve" };
  }
  if (first === "user") {
    const { values, positionals } = strict(rest, {
      "password-stdin": { type: "boolean" },
      allow: { type: "string", multiple: true },
      admin: { type: "boolean" },
    });
    const name = positionals[0];
    if (second === "list") {
      if (positionals.length || Object.keys(values).length) {
        refuse("forward user list takes no arguments");
      }
      return { action: "user-list" };
    }
    if (second !== "add" && second !== "del") {
      refuse(`unknown forward user action "${second ?? ""}"; expected add, del or list`);
    }
    if (name === undefined || positionals.length > 1) {
      refuse(`forward user ${second} needs exactly one user name`);
    }
    const bad = checkUserName(name);
    if (bad) refuse(bad);
    if (second === "del") {
      if (Object.keys(values).length) refuse("forward user del takes only a name");
      return { action: "user-del", name };
    }
    const allow = ((values.allow as string[] | undefined) ?? []).flatMap((a) => a.split(",")).map((
      a,
    ) => a.trim()).filter(Boolean);
    const badAllow = allow.map(checkAllowEntry).find(Boolean);
    if (badAllow) refuse(badAllow);
    return {
      action: "user-add",
      name,
      passwordStdin: values["password-stdin"] === true,
      allow,
      admin: values.admin === true,
    };
  }
  if (first === "connect") {
    const { values, positionals } = strict(
      [second ?? "", ...rest].filter((a, i) => i > 0 || a !== ""),
      {
        proxy: { type: "string" },
        "udp-port": { type: "string" },
        "print-mapping": { type: "boolean" },
        cacert: { type: "string" },
        "password-file": { type: "string" },
      },
    );
    const [destination, portText, extra] = positionals;
    if (typeof values.proxy !== "string") {
      refuse("forward connect needs --proxy dnat[s]://user@host[:port]");
    }
    if (!destination || extra !== undefined) {
      refuse("forward connect needs DEST and optionally PORT");
    }
    const sshPort = parsePort(portText ?? "22");
    const udpPort = parsePort(String(values["udp-port"] ?? "33001"));
    if (sshPort === undefined) refuse(`PORT must be 1-65535, got "${portText}"`);
    if (udpPort === undefined) refuse(`--udp-port must be 1-65535, got "${values["udp-port"]}"`);
    const proxy = parseProxyUrl(values.proxy);
    const passwordFile = values["password-file"];
    if (typeof passwordFile === "string" && proxy.password !== undefined) {
      refuse("give the password once: --password-file or the --proxy URL, not both");
    }
    return {
      action: "connect",
      proxy,
      destination,
      sshPort,
      udpPort,
      printMapping: values["print-mapping"] === true,
      ...(typeof values.cacert === "string" ? { cacert: values.cacert } : {}),
      ...(typeof passwordFile === "string" ? { passwordFile } : {}),
    };
  }
  refuse(`unknown forward action "${first}"; expected serve, user or connect`);
}

type Options = NonNullable<ParseArgsConfig["options"]>;

function strict(args: string[], options: Options) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    refuse((error as Error).message.split(". ")[0] as string);
  }
}
