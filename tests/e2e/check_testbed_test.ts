/**
 * check on a live namespace testbed after the reverse-mode set-up of
 * docs/reverse.md: it must come out clean; an orphaned DNAT session and a
 * stopped DNAT service are found; check upstreams logs in to the servers.
 */
import { assertEquals, assertMatch } from "../_assert.ts";
import { BINARY } from "../testbed/paths.ts";
import { createTestbed, dnatAddArgs, IP, USERS } from "../testbed/reverse_bed.ts";

Deno.test({
  name: "check on the reverse-proxy testbed: clean, orphans and the service, upstream logins",
  ignore: Deno.uid() !== 0,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bed = await createTestbed();
    try {
      /** `check … --json` in the proxy namespace: the exit status and the findings. */
      const checkJson = async (...args: string[]) => {
        const out = await bed.inNs(bed.ns.proxy, [
          BINARY,
          "check",
          ...args,
          "--json",
          "--config",
          bed.configPath,
        ]);
        const findings = JSON.parse(out.stdout).findings as Array<
          { id: string; severity: string; message: string }
        >;
        return { code: out.code, findings };
      };
      const check = async () => {
        const { code, findings } = await checkJson("--sshd-config", `${bed.dir}/proxy/sshd_config`);
        return { code, report: { findings } };
      };
      const clean = await check();
      const errors = clean.report.findings.filter((f: { severity: string }) =>
        f.severity === "error"
      );
      assertEquals(errors, []);
      assertEquals(clean.code, 0);
      assertEquals(
        clean.report.findings.some((f: { id: string; severity: string }) =>
          f.id === "dnat.service" && f.severity === "info"
        ),
        true,
      );
      // A session whose owner ends while the DNAT service is down keeps its rules: an orphan.
      await bed.stopDnatService();
      const owner = new Deno.Command("sleep", { args: ["60"] }).spawn();
      const added = await bed.dnat(dnatAddArgs(owner.pid));
      assertEquals(added.code, 0, added.stderr);
      owner.kill("SIGKILL");
      await owner.status;
      const orphan = await check();
      const warnings = orphan.report.findings.filter((f: { severity: string }) =>
        f.severity === "warning"
      ).map((f: { id: string }) => f.id);
      assertEquals(warnings.includes("dnat.orphaned"), true);
      assertEquals(warnings.includes("dnat.service"), true);
      const reaped = (await bed.dnat(["reap"])).stdout;
      assertEquals(reaped, "reaped 1 session\n");
      await bed.startDnatService();

      // check upstreams: logs in to each rule's servers with its key and pinned host key.
      const upstreams = async (...extra: string[]) => {
        const { code, findings } = await checkJson("upstreams", ...extra);
        return { code, found: findings.map((f) => `${f.id} ${f.message}`) };
      };
      const plain = await upstreams();
      assertEquals(plain.code, 0);
      assertEquals(plain.found.length, 2);
      assertMatch(
        plain.found[0]!,
        new RegExp(
          `^upstream\\.ok rule 1 198\\.18\\.2\\.2:22 as ${USERS.xfer}: logged in \\(host key SHA256:\\S+\\)$`,
        ),
      );
      assertMatch(
        plain.found[1]!,
        /^upstream\.user rule 2 logs in with each proxy user's own account/,
      );
      const bob = await upstreams("--user", USERS.bob);
      assertEquals(bob.found.filter((f) => f.startsWith("upstream.ok")).length, 3);
      // ssh2 stalled about one login in twenty when the host key answer came late: many logins
      // in a row must all succeed (30 here).
      for (let round = 0; round < 10; round++) {
        const again = await upstreams("--user", USERS.bob);
        assertEquals(again.found.filter((f) => f.startsWith("upstream.ok")).length, 3);
      }
      await bed.stopServer("b");
      try {
        const down = await upstreams("--user", USERS.bob);
        assertEquals(down.code, 1);
        assertMatch(
          down.found.join("\n"),
          new RegExp(
            `upstream\\.unreachable rule 2 198\\.18\\.2\\.3:22 as ${USERS.bob}: Cannot connect to 198\\.18\\.2\\.3:22: ECONNREFUSED`,
          ),
        );
      } finally {
        await bed.startServer("b");
      }
      const original = await Deno.readTextFile(bed.knownHostsPath);
      try {
        await Deno.writeTextFile(bed.knownHostsPath, `${IP.a} ${await bed.hostKey("b")}\n`);
        const changed = await upstreams();
        assertEquals(changed.code, 1);
        assertMatch(
          changed.found[0]!,
          new RegExp(
            `^upstream\\.hostkey rule 1 198\\.18\\.2\\.2:22 as ${USERS.xfer}: host key changed; it presents SHA256:\\S+, known_hosts has SHA256:\\S+$`,
          ),
        );
      } finally {
        await Deno.writeTextFile(bed.knownHostsPath, original);
      }
    } finally {
      await bed.close();
    }
  },
});
