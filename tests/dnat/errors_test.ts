import { assertEquals, assertRejects } from "../_assert.ts";
import { CommandNotFoundError } from "../../src/process/runner.ts";
import { ForwardingDisabledError } from "../../src/dnat/errors.ts";
import { NotAuthorizedError } from "../../src/dnat/errors.ts";
import { iptablesBackend } from "../../src/dnat/iptables/backend.ts";
import { installHint } from "../../src/process/packages.ts";
import { ServiceStartError } from "../../src/errors.ts";
import { recordingRunner } from "../_fakes/runner.ts";

Deno.test("a missing netfilter tool says what to install; a daemon adds Aspera Proxy's ERR line", async (t) => {
  const cases: Array<[string, string]> = [
    ["iptables-restore", "apt-get install iptables (Debian) or yum install iptables (Red Hat)"],
    ["ip6tables-save", "apt-get install iptables (Debian) or yum install iptables (Red Hat)"],
    ["nft", "apt-get install nftables (Debian) or yum install nftables (Red Hat)"],
    ["conntrack", "apt-get install conntrack (Debian) or yum install conntrack-tools (Red Hat)"],
    ["ps", "apt-get install procps (Debian) or yum install procps-ng (Red Hat)"],
  ];
  for (const [program, fix] of cases) {
    await t.step(program, () => {
      const error = new CommandNotFoundError(program);
      assertEquals(error.userMessage, `${program} is not installed; install it: ${fix}`);
      assertEquals(
        ServiceStartError.from(error).userMessage,
        `ERR Failed to initialize proxy service: ${program} is not installed; install it: ${fix}`,
      );
      assertEquals([error.exitCode, installHint(program)], [1, fix]);
    });
  }
});

Deno.test("the iptables backend lets a missing tool surface as CommandNotFoundError", async () => {
  const runner = recordingRunner((call) => new CommandNotFoundError(call.program));
  await assertRejects(
    () => iptablesBackend(runner).ensureReady(4),
    CommandNotFoundError,
    "iptables-save is not installed",
  );
});

Deno.test("the helper's errors tell the user what to fix, a refusal says so", () => {
  assertEquals(
    new ForwardingDisabledError(4).userMessage,
    `net.ipv4.ip_forward is 0: enable it with "sysctl -w net.ipv4.ip_forward=1" and set net.ipv4.ip_forward=1 in /etc/sysctl.conf`,
  );
  const refused = new NotAuthorizedError("rule 1 has no host 5");
  assertEquals([refused.message, refused.userMessage, refused.name], [
    "rule 1 has no host 5",
    "dnat refused: rule 1 has no host 5",
    "NotAuthorizedError",
  ]);
});
