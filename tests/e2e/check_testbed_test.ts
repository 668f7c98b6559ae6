/**
 * check on a live namespace testbed after the reverse-mode set-up of
 * docs/reverse.md: it must come out clean; an orphaned DNAT rule is found.
 */
import { assertEquals } from "../_assert.ts";
import { must } from "./_exec.ts";
import { BINARY } from "./_run.ts";
import { createTestbed, IP } from "./_testbed.ts";

Deno.test({
  name: "check on the reverse-proxy testbed: clean, then an orphaned rule is reported",
  ignore: Deno.uid() !== 0,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bed = await createTestbed();
    try {
      const check = async () => {
        const out = await new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            bed.ns.proxy,
            BINARY,
            "check",
            "--json",
            "--config",
            bed.configPath,
            "--sshd-config",
            `${bed.dir}/proxy/sshd_config`,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        return { code: out.code, report: JSON.parse(new TextDecoder().decode(out.stdout)) };
      };
      const clean = await check();
      const errors = clean.report.findings.filter((f: { severity: string }) =>
        f.severity === "error"
      );
      assertEquals(errors, []);
      assertEquals(clean.code, 0);
      // A session whose owner is long gone (pid 4000000 does not exist here).
      await must([
        "ip",
        "netns",
        "exec",
        bed.ns.proxy,
        BINARY,
        "dnat",
        "add",
        "--config",
        bed.configPath,
        "--session",
        crypto.randomUUID(),
        "--owner",
        "4000000",
        "--client",
        IP.client,
        "--proxy",
        IP.proxy,
        "--rule",
        "1",
        "--host",
        "0",
      ]);
      const orphan = await check();
      const warnings = orphan.report.findings.filter((f: { severity: string }) =>
        f.severity === "warning"
      ).map((f: { id: string }) => f.id);
      assertEquals(warnings.includes("dnat.orphaned"), true);
      await must([
        "ip",
        "netns",
        "exec",
        bed.ns.proxy,
        BINARY,
        "dnat",
        "reap",
        "--config",
        bed.configPath,
      ]);
    } finally {
      await bed.close();
    }
  },
});
