// deno-lint-ignore-file no-console
/**
 * Run as root inside a throwaway network namespace, with the runner named in
 * argv ("lib" or "command"): drives the nftables backend through it over a
 * fixed sequence of sessions and prints one JSON line of what the kernel
 * holds after each step, and the error a refused change gives.
 */
import { nftablesBackend, nftCommandRunner } from "../../../src/dnat/nftables/backend.ts";
import type { NftRunner } from "../../../src/dnat/types.ts";
import { findLibnftables, libnftablesRunner } from "../../../src/platform/libnftables.ts";
import { realRunner } from "../../../src/platform/runner.ts";
import { parseIp } from "../../../src/net/ip.ts";
import type { DnatSession } from "../../../src/dnat/types.ts";

const nft: NftRunner = Deno.args[0] === "lib"
  ? libnftablesRunner(findLibnftables() as string)
  : nftCommandRunner(realRunner);
const backend = nftablesBackend(nft);

function session(id: string, clientPort: number | undefined, portCount = 1): DnatSession {
  return {
    id,
    owner: { pid: 1, start: 1 },
    client: parseIp("198.18.1.2")!,
    ...(clientPort === undefined ? {} : { clientPort }),
    proxy: parseIp("198.18.1.1")!,
    proxyPort: 33001,
    portCount,
    server: parseIp("198.18.2.2")!,
    serverPort: 33001,
  };
}

/**
 * The elements of our table, one "set: element" line each, sorted (hash order differs between
 * runs), without the expiry countdowns that differ by the millisecond.
 */
async function kernel(): Promise<string[]> {
  const out = await realRunner.run("nft", ["list", "table", "ip", "xferproxy"]);
  if (out.code !== 0) return ["(no table)"];
  const elements: string[] = [];
  for (const m of out.stdout.matchAll(/(?:map|set) (\w+) \{[^}]*?elements = \{([^}]*)\}/g)) {
    for (const e of (m[2] as string).split(",")) {
      elements.push(`${m[1]}: ${e.replace(/ expires [0-9hms.]+/, "").replace(/\s+/g, " ").trim()}`);
    }
  }
  return elements.sort();
}

const steps: Record<string, string[]> = {};
await backend.ensureReady(4);
const learning = session("a", undefined, 2);
const other = session("b", 40001);
await backend.add([learning, other]);
steps.added = await kernel();
const learned = { ...learning, clientPort: 40000 };
await backend.replace(learning, learned, [other]);
steps.replaced = await kernel();
await backend.remove([other], [learned]);
steps.removed = await kernel();
await realRunner.run("nft", ["flush", "map", "ip", "xferproxy", "dnat_port"]);
steps.repaired = [...(await backend.reconcile([learned])).repaired];
steps.afterRepair = await kernel();
let refused = "";
try {
  await nft.run("delete table ip no_such_table");
} catch (error) {
  refused = `${(error as Error).name}: ${(error as Error).message}`;
}
await backend.teardown();
steps.tornDown = await kernel();
console.log(JSON.stringify({ steps, refused }));
