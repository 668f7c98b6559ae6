/**
 * Forward API churn, run inside the inside namespace by forward_churn.ts:
 * `clients` concurrent clients for `seconds`, each repeating one cycle a
 * second (allocate a session, 3 keepalives 250 ms apart, release it), at most
 * `seconds` cycles each. Prints one JSON line: cycles, allocations,
 * keepalives, releases, failures and the first few errors.
 * @module
 */
// deno-lint-ignore-file no-console
const [api = "", destination = "", secondsArg = "", clientsArg = "", auth = ""] = Deno.args;
const seconds = Number(secondsArg);
const clients = Number(clientsArg);
if (!(seconds > 0) || !(clients > 0) || !api || !destination || !auth) {
  throw new Error("usage: forward_churn_client.ts API DESTINATION SECONDS CLIENTS USER:PASSWORD");
}
const CYCLE_MS = 1000;
const KEEPALIVES = 3;
const KEEPALIVE_GAP_MS = 250;
const REQUEST_TIMEOUT_MS = 10_000;
const headers = { "content-type": "application/json", authorization: "Basic " + btoa(auth) };
const body = JSON.stringify({ destination, ssh_port: 22, udp_port: 33001 });
const counts = { cycles: 0, allocations: 0, keepalives: 0, releases: 0, failures: 0 };
const errors: string[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function fail(what: string): void {
  counts.failures++;
  if (errors.length < 5) errors.push(what);
}

/** One request; its body as text when the status is the expected one, else a failure. */
async function call(method: string, path: string, expected: number): Promise<string | undefined> {
  try {
    const response = await fetch(`${api}${path}`, {
      method,
      headers,
      ...(method === "POST" && path === "/v1/sessions" ? { body } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    if (response.status === expected) return text;
    fail(`${method} ${path}: ${response.status} ${text.slice(0, 200)}`);
  } catch (error) {
    fail(`${method} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return undefined;
}

async function cycle(): Promise<void> {
  const created = await call("POST", "/v1/sessions", 201);
  if (created === undefined) return;
  counts.allocations++;
  const id = JSON.parse(created).id;
  for (let k = 0; k < KEEPALIVES; k++) {
    await sleep(KEEPALIVE_GAP_MS);
    if (await call("POST", `/v1/sessions/${id}/keepalive`, 200) !== undefined) counts.keepalives++;
  }
  if (await call("DELETE", `/v1/sessions/${id}`, 204) !== undefined) counts.releases++;
}

const deadline = performance.now() + seconds * 1000;
await Promise.all(Array.from({ length: clients }, async (_, client) => {
  // Spread the clients over the cycle, so requests arrive steadily rather than in bursts.
  await sleep((client * CYCLE_MS) / clients);
  for (let i = 0; i < seconds && performance.now() < deadline; i++) {
    const start = performance.now();
    await cycle();
    counts.cycles++;
    await sleep(Math.max(0, CYCLE_MS - (performance.now() - start)));
  }
}));
console.log(JSON.stringify({ ...counts, errors }));
