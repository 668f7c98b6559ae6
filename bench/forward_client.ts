/**
 * Forward API load, run inside the inside namespace by bench.ts: 100
 * sequential allocations, then 20 concurrent clients making 10 each; prints
 * {sequential, concurrent} allocations per second. Sessions are deleted
 * afterwards (not timed).
 */
// deno-lint-ignore-file no-console
const [api = "", destination = ""] = Deno.args;
const body = JSON.stringify({ destination, ssh_port: 22, udp_port: 33001 });
const headers = { "content-type": "application/json", authorization: "Basic " + btoa("bench:pw") };

async function allocate(): Promise<string> {
  const response = await fetch(`${api}/v1/sessions`, {
    method: "POST",
    body,
    headers,
  });
  const session = await response.json();
  if (response.status !== 201) throw new Error(`allocation failed: ${JSON.stringify(session)}`);
  return session.id;
}

async function cleanup(ids: string[]): Promise<void> {
  for (const id of ids) {
    await fetch(`${api}/v1/sessions/${id}`, { method: "DELETE", headers }).then((r) =>
      r.body?.cancel()
    );
  }
}

let start = performance.now();
const sequentialIds: string[] = [];
for (let i = 0; i < 100; i++) sequentialIds.push(await allocate());
const sequential = 100 / ((performance.now() - start) / 1000);
await cleanup(sequentialIds);

start = performance.now();
const concurrentIds = (await Promise.all(Array.from({ length: 20 }, async () => {
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) ids.push(await allocate());
  return ids;
}))).flat();
const concurrent = 200 / ((performance.now() - start) / 1000);
await cleanup(concurrentIds);
console.log(JSON.stringify({ sequential, concurrent }));
