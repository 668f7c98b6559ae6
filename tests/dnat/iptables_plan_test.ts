import { assertEquals } from "../_assert.ts";
import {
  ensureText,
  parseOurRules,
  restoreText,
  sessionRules,
  sessionsOf,
  teardownText,
} from "../../src/dnat/iptables_plan.ts";
import type { DnatSession } from "../../src/dnat/types.ts";
import { parseIp } from "../../src/net/ip.ts";
import { iptablesBackend } from "../../src/dnat/iptables.ts";
import { recordingRunner } from "../_fakes/runner.ts";
import { dnatSession } from "./_build.ts";

const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";
const OWNER = { pid: 4242, start: 1_800_000_000 };
const TAG = `-m comment --comment "xferproxy:${ID}:4242:1800000000"`;

function session(extra: Partial<DnatSession> = {}): DnatSession {
  return dnatSession({ id: ID, owner: OWNER, ...extra });
}

Deno.test("sessionRules() writes the exact iptables-save text for each case", async (t) => {
  await t.step("address only (filtering off, or still learning)", () => {
    assertEquals(sessionRules(session()).map((r) => `${r.table} ${r.chain} ${r.spec}`), [
      `nat XFERPROXY-PRE -s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --dport 33001 ${TAG} -j DNAT --to-destination 198.18.2.2:33001`,
      `nat XFERPROXY-POST -p udp -m conntrack --ctstate DNAT --ctorigsrc 198.18.1.2 --ctorigdst 198.18.1.1 --ctorigdstport 33001 ${TAG} -j MASQUERADE`,
      `filter XFERPROXY-FWD -p udp -m conntrack --ctstate DNAT --ctorigsrc 198.18.1.2 --ctorigdst 198.18.1.1 --ctorigdstport 33001 ${TAG} -j ACCEPT`,
    ]);
  });
  await t.step("source port learned", () => {
    assertEquals(sessionRules(session({ clientPort: 60953 })).map((r) => r.spec), [
      `-s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --sport 60953 --dport 33001 ${TAG} -j DNAT --to-destination 198.18.2.2:33001`,
      `-p udp -m conntrack --ctstate DNAT --ctorigsrc 198.18.1.2 --ctorigdst 198.18.1.1 --ctorigsrcport 60953 --ctorigdstport 33001 ${TAG} -j MASQUERADE`,
      `-p udp -m conntrack --ctstate DNAT --ctorigsrc 198.18.1.2 --ctorigdst 198.18.1.1 --ctorigsrcport 60953 --ctorigdstport 33001 ${TAG} -j ACCEPT`,
    ]);
  });
  await t.step("a server's port span, passed through unchanged", () => {
    assertEquals(sessionRules(session({ portCount: 10, clientPort: 60953 })).map((r) => r.spec), [
      `-s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --sport 60953 --dport 33001:33010 ${TAG} -j DNAT --to-destination 198.18.2.2`,
      `-p udp -m conntrack --ctstate DNAT --ctorigsrc 198.18.1.2 --ctorigdst 198.18.1.1 --ctorigsrcport 60953 --ctorigdstport 33001:33010 ${TAG} -j MASQUERADE`,
      `-p udp -m conntrack --ctstate DNAT --ctorigsrc 198.18.1.2 --ctorigdst 198.18.1.1 --ctorigsrcport 60953 --ctorigdstport 33001:33010 ${TAG} -j ACCEPT`,
    ]);
  });
  await t.step("a fixed proxy port's slot 2", () => {
    const [pre] = sessionRules(
      session({ proxyPort: 33003, server: parseIp("198.18.2.3")!, serverPort: 33002 }),
    );
    assertEquals(
      pre!.spec,
      `-s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --dport 33003 ${TAG} -j DNAT --to-destination 198.18.2.3:33002`,
    );
  });
  await t.step("IPv6", () => {
    const [pre] = sessionRules(
      session({
        client: parseIp("2001:db8::2")!,
        proxy: parseIp("2001:db8::1")!,
        server: parseIp("2001:db8:1::5")!,
      }),
    );
    assertEquals(
      pre!.spec,
      `-s 2001:db8::2/128 -d 2001:db8::1/128 -p udp -m udp --dport 33001 ${TAG} -j DNAT --to-destination [2001:db8:1::5]:33001`,
    );
  });
});

Deno.test("restoreText() puts port-specific DNAT rules first and removes before adding", () => {
  const before = sessionRules(session());
  const after = sessionRules(session({ clientPort: 60953 }));
  const text = restoreText(before, after).split("\n");
  assertEquals(text[0], "*nat");
  assertEquals(text[1], `-D XFERPROXY-PRE ${before[0]!.spec}`);
  assertEquals(text[3], `-I XFERPROXY-PRE 1 ${after[0]!.spec}`);
  assertEquals(text[4], `-A XFERPROXY-POST ${after[1]!.spec}`);
  assertEquals(text.slice(5), [
    "COMMIT",
    "*filter",
    `-D XFERPROXY-FWD ${before[2]!.spec}`,
    `-A XFERPROXY-FWD ${after[2]!.spec}`,
    "COMMIT",
    "",
  ]);
  assertEquals(restoreText([], []), "");
});

const EMPTY_SAVE =
  `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -i eth0 -j DROP\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n`;

Deno.test("ensureText() creates only missing chains and jumps, jumps first in line", () => {
  assertEquals(
    ensureText(EMPTY_SAVE),
    [
      "*nat",
      ":XFERPROXY-PRE - [0:0]",
      ":XFERPROXY-POST - [0:0]",
      "-I PREROUTING 1 -j XFERPROXY-PRE",
      "-I POSTROUTING 1 -j XFERPROXY-POST",
      "COMMIT",
      "*filter",
      ":XFERPROXY-FWD - [0:0]",
      "-I FORWARD 1 -j XFERPROXY-FWD",
      "COMMIT",
      "",
    ].join("\n"),
  );
  const ready = EMPTY_SAVE
    .replace(
      ":FORWARD DROP [0:0]\n",
      ":FORWARD DROP [0:0]\n:XFERPROXY-FWD - [0:0]\n-A FORWARD -j XFERPROXY-FWD\n",
    )
    .replace(
      ":POSTROUTING ACCEPT [0:0]\n",
      ":POSTROUTING ACCEPT [0:0]\n:XFERPROXY-PRE - [0:0]\n:XFERPROXY-POST - [0:0]\n-A PREROUTING -j XFERPROXY-PRE\n-A POSTROUTING -j XFERPROXY-POST\n",
    );
  assertEquals(ensureText(ready), undefined);
  // A chain that exists without its jump gets only the jump (never a redeclaration, which would flush it).
  assertEquals(
    ensureText(ready.replace("-A FORWARD -j XFERPROXY-FWD\n", "")),
    "*filter\n-I FORWARD 1 -j XFERPROXY-FWD\nCOMMIT\n",
  );
  assertEquals(
    teardownText(ready),
    [
      "*nat",
      "-D PREROUTING -j XFERPROXY-PRE",
      "-D POSTROUTING -j XFERPROXY-POST",
      "-X XFERPROXY-PRE",
      "-X XFERPROXY-POST",
      "COMMIT",
      "*filter",
      "-D FORWARD -j XFERPROXY-FWD",
      "-X XFERPROXY-FWD",
      "COMMIT",
      "",
    ].join("\n"),
  );
});

Deno.test("parseOurRules() finds only tagged rules in our chains and reads sessions back", () => {
  const rules = sessionRules(session({ clientPort: 60953 }));
  const save = [
    "*nat",
    ...rules.filter((r) => r.table === "nat").map((r) => `-A ${r.chain} ${r.spec}`),
    `-A XFERPROXY-PRE -s 1.2.3.4/32 -j DNAT --to-destination 5.6.7.8:1`,
    `-A PREROUTING -m comment --comment "xferproxy:${ID}:1:1" -j ACCEPT`,
    `-A XFERPROXY-PRE -m comment --comment "xferproxy:${ID}:1" -j ACCEPT`,
    "COMMIT",
    "*filter",
    `-A XFERPROXY-FWD ${rules[2]!.spec}`,
    "COMMIT",
  ].join("\n");
  const parsed = parseOurRules(save);
  assertEquals(parsed.map((r) => [r.table, r.chain, r.id, r.owner]), [
    ["nat", "XFERPROXY-PRE", ID, OWNER],
    ["nat", "XFERPROXY-POST", ID, OWNER],
    ["filter", "XFERPROXY-FWD", ID, OWNER],
  ]);
  assertEquals(sessionsOf(parsed), [{
    id: ID,
    owner: OWNER,
    client: "198.18.1.2",
    clientPort: 60953,
    proxy: "198.18.1.1",
    proxyPort: 33001,
    portCount: 1,
    server: "198.18.2.2",
    serverPort: 33001,
  }]);
  // A span's DNAT without a port reads back as the same ports on the server.
  const span = sessionRules(session({ portCount: 10 }));
  const spanSave = `*nat\n-A XFERPROXY-PRE ${span[0]!.spec}\nCOMMIT\n`;
  assertEquals(
    sessionsOf(parseOurRules(spanSave)).map((s) => [s.proxyPort, s.portCount, s.serverPort]),
    [[33001, 10, 33001]],
  );
});

Deno.test("iptablesBackend sends one iptables-restore --noflush --wait transaction per change", async () => {
  const runner = recordingRunner((
    call,
  ) => (call.program === "iptables-save" ? { stdout: EMPTY_SAVE } : {}));
  const backend = iptablesBackend(runner);
  await backend.ensureReady(4);
  await backend.add([session()]);
  const restores = runner.calls.filter((c) => c.program === "iptables-restore");
  assertEquals(restores.map((c) => c.args), [["--noflush", "--wait"], ["--noflush", "--wait"]]);
  assertEquals(restores[1]!.stdin, restoreText([], sessionRules(session())));
  assertEquals(runner.calls.some((c) => c.program.startsWith("ip6tables-restore")), false);
});

Deno.test("iptablesBackend.reconcile() restores chains, jumps and missing rules, drops stale ones", async () => {
  const narrowed = session({ clientPort: 60953 });
  const stale = sessionRules(session()); // the address-only rules a crash left behind
  // After a reload: our chains exist again but hold only stale rules, and the jumps are gone.
  let save = [
    "*nat",
    ":XFERPROXY-PRE - [0:0]",
    ":XFERPROXY-POST - [0:0]",
    ...stale.filter((r) => r.table === "nat").map((r) => `-A ${r.chain} ${r.spec}`),
    "COMMIT",
    "*filter",
    ":XFERPROXY-FWD - [0:0]",
    "COMMIT",
  ].join("\n");
  const runner = recordingRunner((call) => {
    if (call.program === "iptables-save") return { stdout: save };
    if (call.program === "iptables-restore" && call.stdin?.includes("-I PREROUTING")) {
      save = save.replace(
        ":XFERPROXY-PRE - [0:0]",
        ":XFERPROXY-PRE - [0:0]\n-A PREROUTING -j XFERPROXY-PRE",
      );
    }
    return call.program.startsWith("ip6tables") ? { code: 1 } : {};
  });
  assertEquals(await iptablesBackend(runner).reconcile([narrowed]), [ID]);
  const restores = runner.calls.filter((c) => c.program === "iptables-restore").map((c) => c.stdin);
  assertEquals(restores[0]?.includes("-I PREROUTING 1 -j XFERPROXY-PRE"), true);
  assertEquals(
    restores[1],
    restoreText(stale.filter((r) => r.table === "nat"), sessionRules(narrowed)),
  );
});
