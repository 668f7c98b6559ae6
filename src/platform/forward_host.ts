/**
 * What the forward daemon needs from the host: port probes, name
 * resolution, its own addresses, the users file, and HTTP(S) listeners.
 * @module
 */

import dgram from "node:dgram";
import dns from "node:dns";
import { type Cidr, type IpAddress, parseCidr, parseIp } from "../net/ip.ts";
import type { CommandRunner } from "../process/runner.ts";
import { UserError } from "../errors.ts";

/** True when nothing on the host holds the port, for TCP and for UDP. */
export async function portFree(port: number): Promise<boolean> {
  try {
    Deno.listen({ hostname: "0.0.0.0", port, transport: "tcp" }).close();
  } catch {
    return false;
  }
  return await new Promise((resolve) => {
    const socket = dgram.createSocket("udp4");
    socket.once("error", () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, "0.0.0.0", () => {
      socket.close();
      resolve(true);
    });
  });
}

/** The addresses a name resolves to (getaddrinfo: /etc/hosts, then DNS). */
export function resolveName(name: string): Promise<IpAddress[]> {
  return new Promise((resolve, reject) => {
    dns.lookup(name, { all: true }, (error, addresses) => {
      if (error) return reject(error);
      resolve(
        addresses.map((a) => parseIp(a.address)).filter((a): a is IpAddress => a !== undefined),
      );
    });
  });
}

/** The proxy's own address toward a client (`ip route get`), for the DNAT rule and the answer. */
export async function localAddressFor(
  runner: CommandRunner,
  client: IpAddress,
): Promise<IpAddress | undefined> {
  const result = await runner.run("ip", ["-j", "route", "get", client.text]);
  if (result.code !== 0) return undefined;
  const [route] = JSON.parse(result.stdout) as Array<
    { prefsrc?: string; type?: string; dst?: string }
  >;
  // A client on this very host reaches us on its own address.
  return parseIp(route?.prefsrc ?? (route?.type === "local" ? client.text : ""));
}

/** The networks of every interface: destinations the proxy never forwards to by default. */
export async function ownNetworks(runner: CommandRunner): Promise<Cidr[]> {
  const result = await runner.run("ip", ["-j", "addr", "show"]);
  if (result.code !== 0) return [];
  const links = JSON.parse(result.stdout) as Array<
    { addr_info?: Array<{ local?: string; prefixlen?: number }> }
  >;
  return links.flatMap((l) => l.addr_info ?? [])
    .map((a) => parseCidr(`${a.local}/${a.prefixlen}`))
    .filter((c): c is Cidr => c !== undefined)
    .map((c) => parseCidr(`${networkOf(c)}/${c.prefix}`) as Cidr);
}

function networkOf(c: Cidr): string {
  const bytes = c.address.bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, c.prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
  return c.address.family === 4 ? bytes.join(".") : (parseIp(
    Array.from(
      { length: 8 },
      (_, i) => ((bytes[2 * i] as number) << 8 | (bytes[2 * i + 1] as number)).toString(16),
    ).join(":"),
  ) as IpAddress).text;
}

/**
 * Reads the users file; a missing file is an empty one. Denied, it says which file: Deno's
 * error names none when a directory on the way is closed (its permission check fails first).
 */
export async function readUsersText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new UserError(`Cannot read "${path}": permission denied`, { cause: error });
    }
    throw error;
  }
}

/** Replaces the users file atomically, root-only (0600). */
export async function writeUsersText(path: string, text: string): Promise<void> {
  const dir = path.replace(/\/[^/]*$/, "") || "/";
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  const temp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(temp, text, { mode: 0o600 });
  await Deno.chmod(temp, 0o600);
  await Deno.rename(temp, path);
}
