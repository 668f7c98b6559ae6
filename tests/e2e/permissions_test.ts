/**
 * Each mode runs with only the permissions it needs: the probe gets the same
 * permission set as the binary (deno.json "permissions.xferproxy"), applies a
 * command's revocations, and tries every kind of access.
 */
import { assertEquals, assertIncludes } from "../_assert.ts";
import { BINARY, ROOT } from "../testbed/paths.ts";
import { dnatArgv, type DnatRequest, parseDnatArgs } from "../../src/dnat/contract.ts";

async function probe(args: string[]): Promise<Record<string, string>> {
  const output = await new Deno.Command(`${ROOT}.tools/bin/deno`, {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      "--cached-only",
      "--config",
      `${ROOT}deno.json`,
      "-P=xferproxy",
      `${ROOT}tests/e2e/probes/permissions_probe.ts`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assertEquals(output.code, 0, stderr);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/** What a command that keeps nothing sees: the set had net, and every attempt is now denied. */
const NOTHING = {
  netGrantedBefore: "allowed",
  connect: "denied",
  listen: "denied",
  run: "denied",
  runSudo: "denied",
  write: "denied",
  read: "denied",
  env: "denied",
  ffiLibc: "denied",
  ffiNftables: "denied",
  ffiOther: "denied",
  forwardingRead: "denied",
};

Deno.test("check config cannot open a socket, run a program or write a file", async () => {
  assertEquals(await probe(["check", "config"]), { ...NOTHING, read: "allowed", env: "allowed" });
});

Deno.test("check system may run only the programs that report versions and state", async () => {
  const seen = await probe(["check", "system"]);
  // iptables --version is allowed; sudo is not; nothing may connect, listen or write.
  assertEquals(seen, { ...NOTHING, read: "allowed", env: "allowed", run: "allowed" });
});

Deno.test("reverse mode alone keeps FFI on libc, and runs only logger and sudo", async () => {
  const seen = await probe(["reverse"]);
  assertEquals(seen, {
    ...NOTHING,
    connect: "allowed (ConnectionRefused)",
    listen: "allowed",
    runSudo: "allowed",
    write: "allowed",
    read: "allowed",
    env: "allowed",
    ffiLibc: "allowed",
    forwardingRead: "allowed",
  });
  for (const args of [["check", "system"], ["dnat", "list"], ["forward"]]) {
    assertEquals((await probe(args)).ffiLibc, "denied", args.join(" "));
  }
});

Deno.test("the DNAT service alone loads libraries and reaches the network; no dnat call may", async () => {
  const dnat = { ...NOTHING, run: "allowed", write: "allowed", read: "allowed", env: "allowed" };
  // libnftables, and libc for its socket's peer, pidfds and /proc; the network to check a server.
  assertEquals(await probe(["dnat", "serve"]), {
    ...dnat,
    ffiNftables: "allowed",
    ffiLibc: "allowed",
    forwardingRead: "allowed",
    connect: "allowed (ConnectionRefused)",
    listen: "allowed",
  });
  const id = crypto.randomUUID();
  const add = parseDnatArgs(
    "add --rule 1 --host 0 --server 198.18.2.2:22 --owner 1 --client 198.18.1.2 --proxy 198.18.1.1"
      .split(" "),
  );
  const calls: DnatRequest[] = [
    add,
    { action: "del", id },
    { action: "list", json: false },
    { action: "reap", all: false },
  ];
  for (const call of calls) {
    assertEquals(await probe(dnatArgv(call)), dnat, `dnat ${call.action}`);
  }
  for (const args of [["reverse"], ["check", "system"], ["forward"]]) {
    assertEquals((await probe(args)).ffiNftables, "denied", args.join(" "));
  }
});

Deno.test("check upstreams may connect, and nothing else beyond reading", async () => {
  assertEquals(await probe(["check", "upstreams"]), {
    ...NOTHING,
    connect: "allowed (ConnectionRefused)",
    listen: "allowed",
    read: "allowed",
    env: "allowed",
  });
});

Deno.test("version and help keep no permission at all", async () => {
  for (const args of [["version"], ["help"]]) assertEquals(await probe(args), NOTHING);
});

Deno.test("dist/xferproxy runs with the deno.json permission set", async () => {
  // A compiled binary embeds the set; the single file's header must pass exactly -P=xferproxy
  // with the deno.json it carries, which must be ours.
  const file = await Deno.open(BINARY);
  const start = new Uint8Array(8192);
  const read = (await file.read(start)) ?? 0;
  file.close();
  const head = new TextDecoder().decode(start.subarray(0, read));
  if (!head.startsWith("#!")) {
    assertEquals(head.slice(0, 2), "\x7fE");
    return;
  }
  assertIncludes(head, `--config "$dir/deno.json" -P=xferproxy "$dir/app/main.js"`);
  // One entry for every mode (a reverse session starts as the session client, which runs this
  // line when the service cannot decide); only V8's tuning differs by mode.
  assertIncludes(head, `\n  v8=--max-semi-space-size=1\n`);
  assertIncludes(head, `[ "\${1:-} \${2:-}" = "dnat serve" ] && v8="$v8,--optimize-for-size"\n`);
  assertIncludes(head, `"--v8-flags=$v8"`);
  const sha = /XP_SHA256=([0-9a-f]{64})/.exec(head)?.[1];
  await new Deno.Command(BINARY, { args: ["version"], stdout: "null" }).output();
  assertEquals(
    await Deno.readTextFile(`/var/cache/xferproxy/${sha}/deno.json`),
    await Deno.readTextFile(`${ROOT}deno.json`),
  );
});
