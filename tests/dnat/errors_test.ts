import { assertEquals } from "../_assert.ts";
import { describeHelperError } from "../../src/dnat/errors.ts";
import { CommandNotFoundError } from "../../src/process/runner.ts";
import { ForwardingDisabledError } from "../../src/dnat/manager.ts";
import { iptablesBackend, NetfilterError } from "../../src/dnat/iptables.ts";
import { recordingRunner } from "../_fakes/runner.ts";
import { assertRejects } from "../_assert.ts";

Deno.test("a missing netfilter tool gives Aspera Proxy's ERR line and the install command", async (t) => {
  const cases: Array<[string, string]> = [
    ["iptables-restore", "apt-get install iptables (Debian) or yum install iptables (Red Hat)"],
    ["nft", "apt-get install nftables (Debian) or yum install nftables (Red Hat)"],
    ["conntrack", "apt-get install conntrack (Debian) or yum install conntrack-tools (Red Hat)"],
  ];
  for (const [program, fix] of cases) {
    await t.step(program, () => {
      assertEquals(
        describeHelperError(new CommandNotFoundError(program), []),
        `ERR Failed to initialize proxy service: ${program} is not installed; install it: ${fix}`,
      );
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

Deno.test("describeHelperError() passes expected errors through and leaves bugs alone", () => {
  assertEquals(
    describeHelperError(new ForwardingDisabledError(4), [ForwardingDisabledError]),
    `net.ipv4.ip_forward is 0: enable it with "sysctl -w net.ipv4.ip_forward=1" and set net.ipv4.ip_forward=1 in /etc/sysctl.conf`,
  );
  assertEquals(describeHelperError(new NetfilterError("x"), [ForwardingDisabledError]), undefined);
  assertEquals(describeHelperError(new TypeError("bug"), [NetfilterError]), undefined);
});
