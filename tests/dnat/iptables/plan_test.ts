import { assertEquals, assertRejects } from "../../_assert.ts";
import {
  ensureText,
  FIXED_RULES,
  isLegacyRule,
  parseOurRules,
  restoreText,
  sameRules,
  sessionRules,
  sessionsOf,
  teardownText,
} from "../../../src/dnat/iptables/plan.ts";
import type { DnatSession } from "../../../src/dnat/types.ts";
import { parseIp } from "../../../src/net/ip.ts";
import { iptablesBackend, READY_FRESH_MS } from "../../../src/dnat/iptables/backend.ts";
import { NetfilterError } from "../../../src/dnat/errors.ts";
import { recordingRunner } from "../../_fakes/runner.ts";
import { dnatSession } from "../_build.ts";
import { legacyIptablesRules } from "../../testbed/legacy_rules.ts";

const ID = "3a9fd819-59c3-42bc-b0a2-d26304a1eb84";
const OWNER = { pid: 4242, start: 1_800_000_000_000 };
const TAG = `-m comment --comment "xferproxy:${ID}:4242:1800000000000"`;

function session(extra: Partial<DnatSession> = {}): DnatSession {
  return dnatSession({ id: ID, owner: OWNER, ...extra });
}

const MARK = "-j CONNMARK --set-xmark 0x78700000/0xffffffff";

Deno.test("sessionRules() writes the exact iptables-save text for each case", async (t) => {
  await t.step("address only (filtering off, or still learning): mark, then DNAT", () => {
    const match = `-s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --dport 33001 ${TAG}`;
    assertEquals(sessionRules(session()).map((r) => `${r.table} ${r.chain} ${r.spec}`), [
      `nat XFERPROXY-PRE ${match} ${MARK}`,
      `nat XFERPROXY-PRE ${match} -j DNAT --to-destination 198.18.2.2:33001`,
    ]);
  });
  await t.step("source port learned", () => {
    const match =
      `-s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --sport 60953 --dport 33001 ${TAG}`;
    assertEquals(sessionRules(session({ clientPort: 60953 })).map((r) => r.spec), [
      `${match} ${MARK}`,
      `${match} -j DNAT --to-destination 198.18.2.2:33001`,
    ]);
  });
  await t.step("a server's port span, passed through unchanged", () => {
    assertEquals(
      sessionRules(session({ portCount: 10, clientPort: 60953 }))[1]!.spec,
      `-s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --sport 60953 --dport 33001:33010 ${TAG} -j DNAT --to-destination 198.18.2.2`,
    );
  });
  await t.step("a fixed proxy port's slot 2", () => {
    const [, dnat] = sessionRules(
      session({ proxyPort: 33003, server: parseIp("198.18.2.3")!, serverPort: 33002 }),
    );
    assertEquals(
      dnat!.spec,
      `-s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --dport 33003 ${TAG} -j DNAT --to-destination 198.18.2.3:33002`,
    );
  });
  await t.step("IPv6", () => {
    const [, dnat] = sessionRules(
      session({
        client: parseIp("2001:db8::2")!,
        proxy: parseIp("2001:db8::1")!,
        server: parseIp("2001:db8:1::5")!,
      }),
    );
    assertEquals(
      dnat!.spec,
      `-s 2001:db8::2/128 -d 2001:db8::1/128 -p udp -m udp --dport 33001 ${TAG} -j DNAT --to-destination [2001:db8:1::5]:33001`,
    );
  });
  await t.step("a forward session: TCP to the SSH port and UDP, each marked then DNATed", () => {
    assertEquals(
      sessionRules(session({ proxyPort: 5000, tcpServerPort: 22 })).map((r) =>
        r.spec.replace(TAG, "TAG")
      ),
      [
        `-s 198.18.1.2/32 -d 198.18.1.1/32 -p tcp -m tcp --dport 5000 TAG ${MARK}`,
        `-s 198.18.1.2/32 -d 198.18.1.1/32 -p tcp -m tcp --dport 5000 TAG -j DNAT --to-destination 198.18.2.2:22`,
        `-s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --dport 5000 TAG ${MARK}`,
        `-s 198.18.1.2/32 -d 198.18.1.1/32 -p udp -m udp --dport 5000 TAG -j DNAT --to-destination 198.18.2.2:33001`,
      ],
    );
  });
  await t.step("however many sessions, one fixed ACCEPT and one fixed MASQUERADE", () => {
    assertEquals(FIXED_RULES.map((r) => `${r.table} ${r.chain} ${r.spec}`), [
      `nat XFERPROXY-POST -m connmark --mark 0x78700000 -m comment --comment "xferproxy:session-flows" -j MASQUERADE`,
      `filter XFERPROXY-FWD -m conntrack --ctstate DNAT -m connmark --mark 0x78700000 -m comment --comment "xferproxy:session-flows" -j ACCEPT`,
    ]);
  });
});

Deno.test("restoreText() puts port-specific rules first, mark before DNAT, and removes before adding", () => {
  const before = sessionRules(session());
  const after = sessionRules(session({ clientPort: 60953 }));
  const other = sessionRules(session({ id: "0b1e2d3c-59c3-42bc-b0a2-d26304a1eb84" }));
  assertEquals(restoreText(before, [...after, ...other]).split("\n"), [
    "*nat",
    `-D XFERPROXY-PRE ${before[0]!.spec}`,
    `-D XFERPROXY-PRE ${before[1]!.spec}`,
    `-I XFERPROXY-PRE 1 ${after[1]!.spec}`,
    `-I XFERPROXY-PRE 1 ${after[0]!.spec}`,
    `-A XFERPROXY-PRE ${other[0]!.spec}`,
    `-A XFERPROXY-PRE ${other[1]!.spec}`,
    "COMMIT",
    "",
  ]);
  assertEquals(restoreText([], []), "");
});

const EMPTY_SAVE =
  `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -i eth0 -j DROP\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n`;

const [FIXED_POST, FIXED_FWD] = FIXED_RULES;

Deno.test("ensureText() creates only missing chains, jumps and fixed rules, jumps first in line", () => {
  assertEquals(
    ensureText(EMPTY_SAVE),
    [
      "*nat",
      ":XFERPROXY-PRE - [0:0]",
      ":XFERPROXY-POST - [0:0]",
      "-I PREROUTING 1 -j XFERPROXY-PRE",
      "-I POSTROUTING 1 -j XFERPROXY-POST",
      `-A XFERPROXY-POST ${FIXED_POST.spec}`,
      "COMMIT",
      "*filter",
      ":XFERPROXY-FWD - [0:0]",
      "-I FORWARD 1 -j XFERPROXY-FWD",
      `-A XFERPROXY-FWD ${FIXED_FWD.spec}`,
      "COMMIT",
      "",
    ].join("\n"),
  );
  const ready = EMPTY_SAVE
    .replace(
      ":FORWARD DROP [0:0]\n",
      `:FORWARD DROP [0:0]\n:XFERPROXY-FWD - [0:0]\n-A FORWARD -j XFERPROXY-FWD\n-A XFERPROXY-FWD ${FIXED_FWD.spec}\n`,
    )
    .replace(
      ":POSTROUTING ACCEPT [0:0]\n",
      `:POSTROUTING ACCEPT [0:0]\n:XFERPROXY-PRE - [0:0]\n:XFERPROXY-POST - [0:0]\n-A PREROUTING -j XFERPROXY-PRE\n-A POSTROUTING -j XFERPROXY-POST\n-A XFERPROXY-POST ${FIXED_POST.spec}\n`,
    );
  assertEquals(ensureText(ready), undefined);
  // A chain that exists without its jump gets only the jump (never a redeclaration, which would flush it).
  assertEquals(
    ensureText(ready.replace("-A FORWARD -j XFERPROXY-FWD\n", "")),
    "*filter\n-I FORWARD 1 -j XFERPROXY-FWD\nCOMMIT\n",
  );
  // A fixed rule an administrator or a reload removed comes back alone.
  assertEquals(
    ensureText(ready.replace(`-A XFERPROXY-FWD ${FIXED_FWD.spec}\n`, "")),
    `*filter\n-A XFERPROXY-FWD ${FIXED_FWD.spec}\nCOMMIT\n`,
  );
  assertEquals(
    teardownText(ready),
    [
      "*nat",
      "-D PREROUTING -j XFERPROXY-PRE",
      "-D POSTROUTING -j XFERPROXY-POST",
      "-F XFERPROXY-PRE",
      "-X XFERPROXY-PRE",
      "-F XFERPROXY-POST",
      "-X XFERPROXY-POST",
      "COMMIT",
      "*filter",
      "-D FORWARD -j XFERPROXY-FWD",
      "-F XFERPROXY-FWD",
      "-X XFERPROXY-FWD",
      "COMMIT",
      "",
    ].join("\n"),
  );
});

/** The per-session MASQUERADE and ACCEPT rules of the plan before the fixed rules. */
function legacyRules(s: DnatSession): string[] {
  return legacyIptablesRules({ ...s, client: s.client.text, proxy: s.proxy.text });
}

Deno.test("parseOurRules() finds only tagged rules in our chains and reads sessions back", () => {
  const rules = sessionRules(session({ clientPort: 60953 }));
  const [legacyPost, legacyFwd] = legacyRules(session({ clientPort: 60953 }));
  const save = [
    "*nat",
    ...rules.map((r) => `-A ${r.chain} ${r.spec}`),
    `-A XFERPROXY-POST ${FIXED_POST.spec}`,
    legacyPost,
    `-A XFERPROXY-PRE -s 1.2.3.4/32 -j DNAT --to-destination 5.6.7.8:1`,
    `-A PREROUTING -m comment --comment "xferproxy:${ID}:1:1" -j ACCEPT`,
    `-A XFERPROXY-PRE -m comment --comment "xferproxy:${ID}:1" -j ACCEPT`,
    "COMMIT",
    "*filter",
    `-A XFERPROXY-FWD ${FIXED_FWD.spec}`,
    legacyFwd,
    "COMMIT",
  ].join("\n");
  const parsed = parseOurRules(save);
  assertEquals(parsed.map((r) => [r.table, r.chain, r.id, r.owner, isLegacyRule(r)]), [
    ["nat", "XFERPROXY-PRE", ID, OWNER, false],
    ["nat", "XFERPROXY-PRE", ID, OWNER, false],
    ["nat", "XFERPROXY-POST", ID, OWNER, true],
    ["filter", "XFERPROXY-FWD", ID, OWNER, true],
  ]);
  // One session, though it holds two rules (mark and DNAT) and legacy ones.
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
  const spanSave = `*nat\n${span.map((r) => `-A XFERPROXY-PRE ${r.spec}`).join("\n")}\nCOMMIT\n`;
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

/** A runner over one iptables-save text the restores change (jumps only), no IPv6. */
function savedRunner(initial: string) {
  let save = initial;
  return recordingRunner((call) => {
    if (call.program === "iptables-save") return { stdout: save };
    if (call.program === "iptables-restore" && call.stdin?.includes("-I PREROUTING")) {
      save = save.replace(
        ":XFERPROXY-PRE - [0:0]",
        ":XFERPROXY-PRE - [0:0]\n-A PREROUTING -j XFERPROXY-PRE",
      );
    }
    return call.program.startsWith("ip6tables") ? { code: 1 } : {};
  });
}

Deno.test("iptablesBackend.reconcile() restores chains, jumps and missing rules, drops stale ones", async () => {
  const narrowed = session({ clientPort: 60953 });
  const stale = sessionRules(session()); // the address-only rules a crash left behind
  // After a reload: our chains exist again but hold only stale rules, and the jumps are gone.
  const runner = savedRunner([
    "*nat",
    ":XFERPROXY-PRE - [0:0]",
    ":XFERPROXY-POST - [0:0]",
    ...stale.map((r) => `-A ${r.chain} ${r.spec}`),
    "COMMIT",
    "*filter",
    ":XFERPROXY-FWD - [0:0]",
    "COMMIT",
  ].join("\n"));
  // The jumps had gone too: its rules were out of reach, whatever else was missing.
  assertEquals(await iptablesBackend(runner).reconcile([narrowed]), {
    repaired: [ID],
    converted: [],
    rehooked: [ID],
  });
  const restores = runner.calls.filter((c) => c.program === "iptables-restore").map((c) => c.stdin);
  assertEquals(restores[0]?.includes("-I PREROUTING 1 -j XFERPROXY-PRE"), true);
  assertEquals(restores[0]?.includes(`-A XFERPROXY-FWD ${FIXED_FWD.spec}`), true);
  assertEquals(restores[1], restoreText(stale, sessionRules(narrowed)));
  assertEquals(restores.length, 2);
});

Deno.test("iptablesBackend.reconcile() puts a session's mark rule back before its DNAT rule", async () => {
  const s = session({ clientPort: 60953 });
  const [mark, dnat] = sessionRules(s);
  // Only the DNAT rule survived: appending the mark after it would never mark a flow.
  const runner = savedRunner(
    `*nat\n:XFERPROXY-PRE - [0:0]\n:XFERPROXY-POST - [0:0]\n-A PREROUTING -j XFERPROXY-PRE\n-A POSTROUTING -j XFERPROXY-POST\n-A XFERPROXY-POST ${FIXED_POST.spec}\n-A XFERPROXY-PRE ${
      dnat!.spec
    }\nCOMMIT\n*filter\n:XFERPROXY-FWD - [0:0]\n-A FORWARD -j XFERPROXY-FWD\n-A XFERPROXY-FWD ${FIXED_FWD.spec}\nCOMMIT\n`,
  );
  assertEquals((await iptablesBackend(runner).reconcile([s])).repaired, [ID]);
  const restores = runner.calls.filter((c) => c.program === "iptables-restore").map((c) => c.stdin);
  assertEquals(restores, [
    `*nat\n-D XFERPROXY-PRE ${dnat!.spec}\n-I XFERPROXY-PRE 1 ${dnat!.spec}\n-I XFERPROXY-PRE 1 ${
      mark!.spec
    }\nCOMMIT\n`,
  ]);
});

Deno.test("iptablesBackend.reconcile() converts an upgraded proxy's live sessions without cutting them", async () => {
  const s = session({ clientPort: 60953 });
  const [, dnat] = sessionRules(s);
  const [legacyPost, legacyFwd] = legacyRules(s);
  // What the previous version left: the DNAT rule, and a MASQUERADE and ACCEPT per session.
  const runner = savedRunner(
    `*nat\n:XFERPROXY-PRE - [0:0]\n:XFERPROXY-POST - [0:0]\n-A PREROUTING -j XFERPROXY-PRE\n-A POSTROUTING -j XFERPROXY-POST\n-A XFERPROXY-PRE ${
      dnat!.spec
    }\n${legacyPost}\nCOMMIT\n*filter\n:XFERPROXY-FWD - [0:0]\n-A FORWARD -j XFERPROXY-FWD\n${legacyFwd}\nCOMMIT\n`,
  );
  const order: string[] = [];
  const conntrack = {
    mark(f: { client: { text: string }; clientPort?: number }, protocol: string, mark: number) {
      order.push(`mark ${protocol} ${f.client.text}:${f.clientPort} 0x${mark.toString(16)}`);
      return Promise.resolve();
    },
  };
  const recorded = new Proxy(runner, {
    get(target, key) {
      if (key !== "run") return Reflect.get(target, key);
      return (program: string, args: string[], options?: { stdin?: string }) => {
        if (program === "iptables-restore") order.push(options?.stdin?.split("\n")[0] ?? "");
        return target.run(program, args, options);
      };
    },
  });
  assertEquals(await iptablesBackend(recorded, conntrack).reconcile([s]), {
    repaired: [],
    converted: [ID],
  });
  // The fixed rules first, the mark rule, then the live flows marked, and only then the old ACCEPT goes.
  assertEquals(order, [
    "*nat",
    "*nat",
    "mark udp 198.18.1.2:60953 0x78700000",
    "*filter",
  ]);
  const restores = runner.calls.filter((c) => c.program === "iptables-restore").map((c) => c.stdin);
  assertEquals(restores[0]?.includes(`-A XFERPROXY-FWD ${FIXED_FWD.spec}`), true);
  assertEquals(
    restores[1],
    restoreText(
      [{ ...sessionRules(s)[1]!, spec: dnat!.spec }, {
        ...sessionRules(s)[1]!,
        chain: "XFERPROXY-POST",
        spec: legacyPost!.replace("-A XFERPROXY-POST ", ""),
      }],
      sessionRules(s),
    ),
  );
  assertEquals(restores[2], `*filter\n-D ${legacyFwd!.slice(3)}\nCOMMIT\n`);
});

/** iptables-save output as the tool prints it: each table between comment lines with its time. */
function saved(at: string, counters: string, rules: readonly string[]): string {
  return [
    `# Generated by iptables-save v1.8.9 (nf_tables) on ${at}`,
    "*filter",
    `:INPUT ACCEPT ${counters}`,
    ":XFERPROXY-FWD - [0:0]",
    "-A FORWARD -j XFERPROXY-FWD",
    `-A XFERPROXY-FWD ${FIXED_FWD.spec}`,
    "COMMIT",
    `# Completed on ${at}`,
    `# Generated by iptables-save v1.8.9 (nf_tables) on ${at}`,
    "*nat",
    `:PREROUTING ACCEPT ${counters}`,
    ":POSTROUTING ACCEPT [0:0]",
    ":XFERPROXY-POST - [0:0]",
    ":XFERPROXY-PRE - [0:0]",
    "-A PREROUTING -j XFERPROXY-PRE",
    "-A POSTROUTING -j XFERPROXY-POST",
    `-A XFERPROXY-POST ${FIXED_POST.spec}`,
    ...rules,
    "COMMIT",
    `# Completed on ${at}`,
    "",
  ].join("\n");
}

Deno.test("sameRules() ignores the times and counters of a save, and nothing else", async (t) => {
  const rules = sessionRules(session({ clientPort: 60953 })).map((r) => `-A ${r.chain} ${r.spec}`);
  const before = saved("Sat Dec  5 07:49:44 2026", "[0:0]", rules);
  await t.step("another time and other counters: the same", () => {
    assertEquals(sameRules(before, saved("Sat Dec  5 07:49:46 2026", "[812:64960]", rules)), true);
    assertEquals(sameRules(before, before), true);
  });
  await t.step("any rule or chain that differs: not the same", () => {
    const at = "Sat Dec  5 07:49:46 2026";
    const cases: Array<[string, string]> = [
      ["a rule gone", saved(at, "[0:0]", rules.slice(1))],
      ["rules in another order", saved(at, "[0:0]", [...rules].reverse())],
      ["a rule changed", saved(at, "[0:0]", [rules[0]!, rules[1]!.replace(":33001", ":33002")])],
      ["a rule added", saved(at, "[0:0]", [...rules, "-A PREROUTING -j DROP"])],
      ["a chain gone", before.replace(":XFERPROXY-PRE - [0:0]\n", "")],
      ["a policy changed", before.replace(":INPUT ACCEPT", ":INPUT DROP")],
      ["a table more", before + "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"],
      ["cut short", before.slice(0, before.indexOf("COMMIT"))],
      ["empty", ""],
    ];
    for (const [what, after] of cases) {
      assertEquals([what, sameRules(before, after), sameRules(after, before)], [
        what,
        false,
        false,
      ]);
    }
  });
});

Deno.test("iptablesBackend.reconcile() leaves rules found in place alone, and still repairs a later loss", async () => {
  const s = session({ clientPort: 60953 });
  const rules = sessionRules(s).map((r) => `-A ${r.chain} ${r.spec}`);
  let save = saved("Sat Dec  5 07:49:44 2026", "[0:0]", rules);
  const runner = recordingRunner((call) => {
    if (call.program === "iptables-save") return { stdout: save };
    return call.program.startsWith("ip6tables") ? { code: 1 } : {};
  });
  const backend = iptablesBackend(runner);
  const restores = () => runner.calls.filter((c) => c.program === "iptables-restore");
  const wanted = [s];
  assertEquals(await backend.reconcile(wanted), { repaired: [], converted: [] });
  // Saved again later: another time, traffic counted. Nothing to do.
  save = saved("Sat Dec  5 07:49:46 2026", "[812:64960]", rules);
  assertEquals(await backend.reconcile(wanted), { repaired: [], converted: [] });
  assertEquals(restores().length, 0);
  // A firewall reload dropped the session's DNAT rule: put back, whatever was seen before.
  save = saved("Sat Dec  5 07:49:48 2026", "[812:64960]", rules.slice(0, 1));
  assertEquals(await backend.reconcile(wanted), { repaired: [ID], converted: [] });
  assertEquals(restores().length, 1);
  // Other sessions wanted over the same rules (one more registered): looked at, and installed.
  save = saved("Sat Dec  5 07:49:50 2026", "[0:0]", rules);
  assertEquals(await backend.reconcile(wanted), { repaired: [], converted: [] });
  const other = session({ id: "5b1fd819-59c3-42bc-b0a2-d26304a1eb84", clientPort: 60954 });
  assertEquals(await backend.reconcile([s, other]), { repaired: [other.id], converted: [] });
  // The same session's values in a new object (a registry read anew): looked at again.
  assertEquals(await backend.reconcile([{ ...s }]), { repaired: [], converted: [] });
  assertEquals(restores().length, 2);
});

/**
 * A host whose nat table either has our chains or has lost them (a firewall reload): a restore
 * adding to them fails while they are gone, as iptables-restore does.
 */
function reloadableRunner() {
  const host = { chains: false };
  const runner = recordingRunner((call) => {
    if (call.program.startsWith("ip6tables")) return { code: 1 };
    if (call.program === "iptables-save") return { stdout: EMPTY_SAVE };
    if (call.program !== "iptables-restore") return {};
    if (call.stdin?.includes(":XFERPROXY-PRE")) host.chains = true;
    else if (!host.chains) return { code: 2, stderr: "iptables-restore: line 2 failed" };
    return {};
  });
  return { host, runner };
}

Deno.test("iptablesBackend.ensureReady() looks again only once its last look is READY_FRESH_MS old", async () => {
  const { runner } = reloadableRunner();
  let clock = 0;
  const backend = iptablesBackend(runner, undefined, () => clock);
  const saves = () => runner.calls.filter((c) => c.program === "iptables-save").length;
  await backend.ensureReady(4);
  await backend.add([session()]);
  assertEquals(saves(), 1);
  // A burst's next installs: one iptables-restore each, no iptables-save.
  clock += READY_FRESH_MS - 1;
  await backend.ensureReady(4);
  await backend.add([session()]);
  assertEquals(saves(), 1);
  clock += 1;
  await backend.ensureReady(4);
  assertEquals(saves(), 2);
});

Deno.test("iptablesBackend.add() makes the chains again when they went since they were seen", async () => {
  const { host, runner } = reloadableRunner();
  const backend = iptablesBackend(runner, undefined, () => 0);
  await backend.ensureReady(4);
  host.chains = false; // a firewall reload, within the freshness window
  await backend.ensureReady(4);
  await backend.add([session()]);
  assertEquals(host.chains, true);
  const restores = runner.calls.filter((c) => c.program === "iptables-restore");
  // Made, add refused, made again, added.
  assertEquals(restores.map((c) => c.stdin?.includes(":XFERPROXY-PRE")), [
    true,
    false,
    true,
    false,
  ]);
  assertEquals(restores.at(-1)!.stdin, restoreText([], sessionRules(session())));
  // Never looked at: the add's own failure is the answer, and it is not retried.
  const fresh = reloadableRunner();
  await assertRejects(() => iptablesBackend(fresh.runner).add([session()]), NetfilterError);
  assertEquals(fresh.runner.calls.filter((c) => c.program === "iptables-restore").length, 1);
});

Deno.test("iptablesBackend.reconcile() finding everything in place counts as a look for installs", async () => {
  const s = session({ clientPort: 60953 });
  const rules = sessionRules(s).map((r) => `-A ${r.chain} ${r.spec}`);
  const runner = recordingRunner((call) => {
    if (call.program === "iptables-save") {
      return { stdout: saved("Sat Dec  5 07:49:44 2026", "[0:0]", rules) };
    }
    return call.program.startsWith("ip6tables") ? { code: 1 } : {};
  });
  let clock = 0;
  const backend = iptablesBackend(runner, undefined, () => clock);
  const saves = () => runner.calls.filter((c) => c.program === "iptables-save").length;
  await backend.reconcile([s]);
  clock += READY_FRESH_MS;
  await backend.reconcile([s]); // settled: nothing restored, chains and jumps seen
  const seen = saves();
  clock += READY_FRESH_MS - 1;
  await backend.ensureReady(4);
  assertEquals(saves(), seen);
});

Deno.test("a jump an install put back is reported by the next reconcile: what met no rule meanwhile must go", async () => {
  const s = session({ clientPort: 60953 });
  const rules = sessionRules(s).map((r) => `-A ${r.chain} ${r.spec}`);
  // Everything in place but the jump into our PREROUTING chain.
  const runner = savedRunner(
    saved("Sat Dec  5 07:49:44 2026", "[0:0]", rules).replace(
      "-A PREROUTING -j XFERPROXY-PRE\n",
      "",
    ),
  );
  const backend = iptablesBackend(runner, undefined, () => 0);
  await backend.ensureReady(4); // an install's: puts the jump back
  assertEquals(
    runner.calls.some((c) => c.stdin?.includes("-I PREROUTING 1 -j XFERPROXY-PRE")),
    true,
  );
  assertEquals((await backend.reconcile([s])).rehooked, [ID]);
  // Said once: the next round finds all in place.
  assertEquals((await backend.reconcile([s])).rehooked, undefined);
});
