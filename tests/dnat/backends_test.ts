/**
 * The backend seam: backends by name, each declaring what it can do, the
 * config accepting exactly the names the table holds.
 */
import { assertEquals, assertRejects } from "../_assert.ts";
import { BACKEND_NAMES, BACKENDS, createBackend } from "../../src/dnat/backends.ts";
import { parseInline } from "../config/_load.ts";
import { recordingRunner } from "../_fakes/runner.ts";

Deno.test("createBackend() builds each backend of the table, which declares what it can do", async (t) => {
  assertEquals(BACKEND_NAMES, ["iptables", "nftables"]);
  const expected = {
    iptables: { tool: "iptables", tcp: true, tagging: true, listing: true, expiring: false },
    nftables: { tool: "nft", tcp: true, tagging: false, listing: false, expiring: true },
  };
  for (const name of BACKEND_NAMES) {
    await t.step(name, async () => {
      const backend = await createBackend(name, { runner: recordingRunner() });
      assertEquals(backend.name, name);
      assertEquals({ tool: backend.tool, ...backend.capabilities }, expected[name]);
    });
  }
});

Deno.test("createBackend() uses an in-process nftables runner only when offered, and only nftables opens it", async () => {
  let opened = 0;
  const nft = () => {
    opened++;
    return { via: "libnftables /x", run: () => Promise.resolve("") };
  };
  const runner = recordingRunner();
  assertEquals((await createBackend("iptables", { runner, nft })).via, "iptables-restore");
  assertEquals(opened, 0);
  assertEquals((await createBackend("nftables", { runner, nft })).via, "libnftables /x");
  assertEquals((await createBackend("nftables", { runner })).via, "the nft command");
  assertEquals(opened, 1);
});

Deno.test("an unknown backend name is a bug the config never lets through", async () => {
  await assertRejects(
    () => createBackend("ipfw", { runner: recordingRunner() }),
    RangeError,
    'Unknown DNAT backend "ipfw": expected iptables or nftables',
  );
  const report = parseInline("<server><dnat_backend>ipfw</dnat_backend></server>");
  assertEquals(report.config, undefined);
  assertEquals(
    report.problems.map((p) => p.message),
    ['<dnat_backend> must be iptables or nftables, got "ipfw"'],
  );
  assertEquals(Object.keys(BACKENDS), [...BACKEND_NAMES]);
});

Deno.test("the modes reaching netfilter may run every backend's programs, nft included", async () => {
  const { BACKEND_PROGRAMS } = await import("../../src/dnat/backends.ts");
  const { forwardMode } = await import("../../src/forward/command.ts");
  for (const program of ["nft", "iptables-restore", "ip6tables-save"]) {
    assertEquals(BACKEND_PROGRAMS.includes(program), true, program);
  }
  const needs = forwardMode.needs({ command: { action: "serve" } } as never);
  assertEquals(needs.run?.includes("nft"), true);
});
