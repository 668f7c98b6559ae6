// deno-lint-ignore-file no-console
/**
 * Run as root inside a throwaway network namespace with conntrack loaded and accounting on:
 * opens a TCP connection to `address` (argv) over loopback, sends 10000 bytes, and prints one
 * JSON line: what the service's ctnetlink lookup says of it while open and once closed,
 * what `conntrack -L` says of it meanwhile, and the lookup of a connection that never was.
 */
import { conntrackSocket } from "../../../src/platform/conntrack_socket.ts";
import { parseIp } from "../../../src/net/ip.ts";
import type { TcpTuple } from "../../../src/dnat/conntrack.ts";

const [address] = Deno.args;
const ip = parseIp(address!)!;
const listener = Deno.listen({ hostname: address!, port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
const client = await Deno.connect({ hostname: address!, port });
const server = await listener.accept();
const clientPort = (server.remoteAddr as Deno.NetAddr).port;
await client.write(new Uint8Array(10000));
const received = new Uint8Array(10000);
for (let got = 0; got < received.length;) {
  const n = await server.read(received.subarray(got));
  if (n === null) throw new Error("the connection closed early");
  got += n;
}
await server.write(new Uint8Array(300));
await client.read(new Uint8Array(300));
// Let the last ACKs land: the listing and the lookup then see the same counts.
await new Promise((resolve) => setTimeout(resolve, 200));

const tuple: TcpTuple = { client: { ip, port: clientPort }, proxy: { ip, port } };
const socket = conntrackSocket();
const open = await socket.connection(tuple);
const listing = await new Deno.Command("conntrack", {
  args: [
    "-L",
    ...(ip.family === 6 ? ["-f", "ipv6"] : []),
    "-p",
    "tcp",
    "--orig-src",
    address!,
    "--sport",
    String(clientPort),
    "--dport",
    String(port),
  ],
  stdout: "piped",
  stderr: "null",
}).output();
client.close();
server.close();
listener.close();
await new Promise((resolve) => setTimeout(resolve, 200));
const closed = await socket.connection(tuple);
const never = await socket.connection({ client: { ip, port: 1 }, proxy: { ip, port: 2 } });
socket.close();
console.log(JSON.stringify({
  open,
  listing: new TextDecoder().decode(listing.stdout),
  closed,
  never: never ?? null,
}));
Deno.exit(0);
