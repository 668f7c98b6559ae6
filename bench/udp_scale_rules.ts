/**
 * Holds N sessions' rules live through the real backend code while the
 * benchmark streams UDP (bench/udp_scale.ts): run as root inside the
 * proxy's namespace with `BACKEND MODE OTHERS PORT [FLOWS]`. Installs OTHERS
 * filler sessions of client addresses that never send, then FLOWS measured
 * sessions of 198.18.1.2.. to proxy port PORT.. (registered last, so their
 * rules come last), prints "ready", waits for stdin to close, and removes
 * everything. MODE "reverse" is a reverse session's shape (UDP, fillers with
 * learned source ports, measured ones still address-only: the rules a
 * packet would walk longest); "forward" a forward daemon's (TCP and UDP on
 * an allocated port).
 */
// deno-lint-ignore-file no-console
import { iptablesBackend } from "../src/dnat/iptables/backend.ts";
import { nftablesBackend } from "../src/dnat/nftables/backend.ts";
import type { DnatBackend, DnatSession } from "../src/dnat/types.ts";
import { parseIp } from "../src/net/ip.ts";
import { realRunner } from "../src/platform/runner.ts";
import { openNft } from "../src/platform/libnftables.ts";

const [backendName, mode, othersText, portText, flowsText = "1"] = Deno.args;
const others = Number(othersText);
const port = Number(portText);
const flows = Number(flowsText);
const owner = { pid: Deno.pid, start: 1 };
const proxy = parseIp("198.18.1.1")!;
const server = parseIp("198.18.2.2")!;

function filler(i: number): DnatSession {
  const client = parseIp(`198.18.${100 + Math.floor(i / 250)}.${(i % 250) + 1}`)!;
  const base = { id: crypto.randomUUID(), owner, client, proxy, server, portCount: 1 };
  return mode === "forward"
    ? { ...base, proxyPort: 10000 + i, serverPort: 33001, tcpServerPort: 22 }
    : { ...base, clientPort: 40000 + (i % 20000), proxyPort: port, serverPort: port };
}

function measured(j: number): DnatSession {
  const client = parseIp(`198.18.1.${2 + j}`)!;
  const base = { id: crypto.randomUUID(), owner, client, proxy, server, portCount: 1 };
  return mode === "forward"
    ? { ...base, proxyPort: port + j, serverPort: port + j, tcpServerPort: port + j }
    : { ...base, proxyPort: port + j, serverPort: port + j };
}

const backend: DnatBackend = backendName === "nftables"
  ? nftablesBackend(openNft(realRunner))
  : iptablesBackend(realRunner);
await backend.teardown().catch(() => {});
await backend.ensureReady(4);
const sessions = [
  ...Array.from({ length: others }, (_, i) => filler(i)),
  ...Array.from({ length: flows }, (_, j) => measured(j)),
];
for (let i = 0; i < sessions.length; i += 200) await backend.add(sessions.slice(i, i + 200));
console.log("ready");
await new Response(Deno.stdin.readable).arrayBuffer();
await backend.teardown();
