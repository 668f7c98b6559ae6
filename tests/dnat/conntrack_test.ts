import { assertEquals, assertRejects } from "../_assert.ts";
import {
  anyPort,
  conntrackTool,
  flowEventArgs,
  flowFilter,
  parseCounters,
  parseFlowEvent,
  parseFlows,
} from "../../src/dnat/conntrack.ts";
import { parseIp } from "../../src/net/ip.ts";
import { SESSION_CT_MARK } from "../../src/dnat/types.ts";
import { recordingRunner } from "../_fakes/runner.ts";
import { conntrackTable, entryLine } from "../_fakes/conntrack_table.ts";

const LISTING =
  "udp      17 29 src=198.18.1.2 dst=198.18.1.1 sport=40000 dport=33001 packets=20 bytes=4560 src=198.18.2.2 dst=198.18.2.1 sport=33001 dport=40000 packets=20 bytes=4560 mark=0 use=1\n" +
  "udp      17 12 src=198.18.1.2 dst=198.18.1.1 sport=40001 dport=33002 packets=1 bytes=228 [UNREPLIED] src=198.18.2.2 dst=198.18.2.1 sport=33002 dport=40001 packets=0 bytes=0 mark=0 use=1\n";

Deno.test("parseFlows() reads the original direction's client address and ports", () => {
  assertEquals(parseFlows(LISTING), [
    { src: "198.18.1.2", sport: 40000, dport: 33001 },
    { src: "198.18.1.2", sport: 40001, dport: 33002 },
  ]);
});

Deno.test("parseFlows() spells the client's address as sessions do", () => {
  // inet_ntop writes the last 32 bits of an address under ::/96 as a dotted quad.
  const line = "udp      17 29 src=::198.18.1.2 dst=2001:db8::1 sport=40000 dport=33001 " +
    "[UNREPLIED] src=2001:db8::1 dst=::198.18.1.2 sport=33001 dport=40000 mark=0 use=1";
  assertEquals(parseFlows(line), [{
    src: parseIp("::c612:102")!.text,
    sport: 40000,
    dport: 33001,
    untranslated: true,
  }]);
});

Deno.test("parseFlows() tells a flow no rule translated: its replies come from the proxy itself", () => {
  const stale =
    "udp      17 29 src=198.18.1.2 dst=198.18.1.1 sport=40500 dport=33001 [UNREPLIED] " +
    "src=198.18.1.1 dst=198.18.1.2 sport=33001 dport=40500 mark=0 use=1";
  // A session whose server is the proxy itself, on another port: translated all the same.
  const self = "udp      17 29 src=198.18.1.2 dst=198.18.1.1 sport=40600 dport=33001 " +
    "src=198.18.1.1 dst=198.18.1.2 sport=33101 dport=40600 mark=2020605952 use=1";
  assertEquals(
    parseFlows(`${stale}\n${self}\n${LISTING}`).map((f) => [f.sport, f.untranslated]),
    [
      [40500, true],
      [40600, undefined],
      [40000, undefined],
      [40001, undefined],
    ],
  );
});

Deno.test("conntrack -E lines: new flows of our mark, read as client, proxy and port", () => {
  assertEquals(flowEventArgs(SESSION_CT_MARK), [
    "-E",
    "-e",
    "NEW",
    "-p",
    "udp",
    "--mark",
    "0x78700000",
  ]);
  const event = "    [NEW] udp      17 30 src=198.18.1.2 dst=198.18.1.1 sport=40000 dport=33001 " +
    "[UNREPLIED] src=198.18.2.2 dst=198.18.2.1 sport=33001 dport=40000 mark=2020605952";
  assertEquals(parseFlowEvent(event), { src: "198.18.1.2", dst: "198.18.1.1", dport: 33001 });
  const six =
    "    [NEW] udp      17 30 src=2001:db8:0:0::2 dst=2001:db8::1 sport=40000 dport=33001 " +
    "[UNREPLIED] src=2001:db8::9 dst=2001:db8::1 sport=33001 dport=40000 mark=2020605952";
  assertEquals(parseFlowEvent(six), { src: "2001:db8::2", dst: "2001:db8::1", dport: 33001 });
  // conntrack's own lines when it stops: no flow.
  assertEquals(
    parseFlowEvent("conntrack v1.4.7 (conntrack-tools): 2 flow events have been shown."),
    undefined,
  );
});

Deno.test("parseCounters() adds both directions of every flow", () => {
  assertEquals(parseCounters(LISTING), { packets: 41, bytes: 9348 });
  assertEquals(parseCounters(""), { packets: 0, bytes: 0 });
});

Deno.test("flowFilter() selects one proxy port, and the source port once learned", () => {
  const s = { client: parseIp("2001:db8::2")!, proxy: parseIp("2001:db8::1")!, clientPort: 40000 };
  assertEquals(flowFilter(s, 33001), [
    "-f",
    "ipv6",
    "-p",
    "udp",
    "--orig-src",
    "2001:db8::2",
    "--orig-dst",
    "2001:db8::1",
    "--sport",
    "40000",
    "--dport",
    "33001",
  ]);
});

/** A flow to the proxy 198.18.1.1, its replies from the server (span unchanged). */
const flowLine = (
  src: string,
  sport: number,
  dport: number,
  packets: number,
  server = "198.18.2.2",
) =>
  `udp      17 29 src=${src} dst=198.18.1.1 sport=${sport} dport=${dport} packets=${packets} ` +
  `bytes=${packets * 100} src=${server} dst=198.18.2.1 sport=${dport} dport=${sport} ` +
  `packets=0 bytes=0 mark=0 use=1`;

/** Flows to the proxy: two of session a's span, one of b's learned port and one not, one of nobody. */
const TABLE = [
  flowLine("198.18.1.2", 40000, 33001, 1),
  flowLine("198.18.1.2", 40001, 33003, 2),
  flowLine("198.18.1.3", 41000, 33010, 4),
  flowLine("198.18.1.3", 41001, 33010, 8),
  flowLine("198.18.1.9", 40000, 33001, 16),
].join("\n") + "\n";

const a = {
  client: parseIp("198.18.1.2")!,
  proxy: parseIp("198.18.1.1")!,
  proxyPort: 33001,
  portCount: 3,
  server: parseIp("198.18.2.2")!,
  serverPort: 33001,
};
const b = {
  ...a,
  client: parseIp("198.18.1.3")!,
  proxyPort: 33010,
  portCount: 1,
  serverPort: 33010,
  clientPort: 41000,
};

const VANISHED =
  "conntrack v1.4.7 (conntrack-tools): Operation failed: such conntrack doesn't exist";

/**
 * Answers like conntrack over TABLE: -L lists it, -D and -R delete and print the entries they
 * match (any source port when a line names none). The flow from source port `vanish` expires as
 * it is deleted: conntrack-tools up to 1.4.7 stops there, 1.4.8 (`reprint`) goes on but prints
 * its previous line again. A -D of proxy port `fail` fails.
 */
function conntrackOver(
  table: string,
  options: { refuseBatch?: boolean; vanish?: number; reprint?: boolean; fail?: number } = {},
) {
  let entries = table.trim() ? table.trim().split("\n") : [];
  let last = "";
  const arg = (args: readonly string[], name: string) =>
    args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
  /** One delete: what it printed, and whether it stopped at a vanished entry. */
  const remove = (args: readonly string[]) => {
    const sport = arg(args, "--sport");
    const found = entries.filter((e) =>
      e.includes(`src=${arg(args, "--orig-src")} `) &&
      (sport === undefined || e.includes(`sport=${sport} `)) &&
      e.includes(`dport=${arg(args, "--dport")} `)
    );
    let stdout = "";
    for (const e of found) {
      entries = entries.filter((x) => x !== e);
      if (options.vanish !== undefined && e.includes(`sport=${options.vanish} `)) {
        if (!options.reprint) return { stdout, stopped: true, count: found.length };
        stdout += last + "\n";
        continue;
      }
      stdout += e + "\n";
      last = e;
    }
    return { stdout, stopped: false, count: found.length };
  };
  return recordingRunner((call) => {
    if (call.args[0] === "-L") return { stdout: entries.map((e) => e + "\n").join("") };
    if (call.args[0] === "-R") {
      if (options.refuseBatch) return { code: 2, stderr: "conntrack: invalid option -- 'R'" };
      let stdout = "";
      for (const line of (call.stdin ?? "").trim().split("\n")) {
        const done = remove(line.split(" "));
        stdout += done.stdout;
        if (done.stopped) return { code: 1, stdout, stderr: VANISHED };
      }
      return { stdout };
    }
    if (options.fail !== undefined && arg(call.args, "--dport") === String(options.fail)) {
      return { code: 1, stderr: "conntrack v1.4.7 (conntrack-tools): Operation failed: Bad file" };
    }
    const done = remove(call.args);
    if (done.stopped) return { code: 1, stdout: done.stdout, stderr: VANISHED };
    return done.count
      ? { stdout: done.stdout }
      : { code: 1, stderr: "0 flow entries have been deleted" };
  });
}

Deno.test("purge() lists the proxy's flows once and deletes exactly the sessions' in one run", async () => {
  const runner = conntrackOver(TABLE);
  const counters = await conntrackTool(runner).purge([a, b]);
  assertEquals(counters, [{ packets: 3, bytes: 300 }, { packets: 4, bytes: 400 }]);
  assertEquals(runner.calls.map((c) => c.args.slice(0, 2)), [["-L", "-p"], ["-R", "-"]]);
  // Each port with flows by one filter, b's by its learned port too.
  assertEquals(
    runner.calls[1]!.stdin,
    [
      "-D -p udp --orig-src 198.18.1.2 --orig-dst 198.18.1.1 --dport 33001",
      "-D -p udp --orig-src 198.18.1.2 --orig-dst 198.18.1.1 --dport 33003",
      "-D -p udp --orig-src 198.18.1.3 --orig-dst 198.18.1.1 --sport 41000 --dport 33010",
      "",
    ].join("\n"),
  );
  // b's other source port and the stranger's flow stay.
  const left = await runner.run("conntrack", ["-L"]);
  assertEquals(parseFlows(left.stdout).map((f) => `${f.src}:${f.sport}`), [
    "198.18.1.3:41001",
    "198.18.1.9:40000",
  ]);
});

Deno.test("purge() deletes in runs short enough to finish within the runner's bound", async () => {
  // 100 ports with flows: every line of a run walks the whole table.
  const spread = Array.from({ length: 100 }, (_, i) => flowLine("198.18.1.2", 40000, 34000 + i, 1));
  const wide = { ...a, proxyPort: 34000, portCount: 100, serverPort: 34000 };
  const runner = conntrackOver(spread.join("\n"));
  assertEquals(await conntrackTool(runner).purge([wide]), [{ packets: 100, bytes: 10000 }]);
  assertEquals(
    runner.calls.map((c) => c.stdin?.trim().split("\n").length ?? 0),
    [0, 32, 32, 32, 4],
  );
});

Deno.test("purge() counts each flow to the session that learned its source port", async () => {
  // Two users behind one NAT address, ending together: every source port of both goes.
  const first = anyPort({ ...a, clientPort: 40001 });
  const second = anyPort({ ...a, clientPort: 40000 });
  const runner = conntrackOver(TABLE);
  assertEquals(await conntrackTool(runner).purge([first, second]), [
    { packets: 2, bytes: 200 },
    { packets: 1, bytes: 100 },
  ]);
  assertEquals(runner.calls[1]!.stdin!.trim().split("\n").length, 2);
});

Deno.test("purge() deletes a flood of source ports with one line per proxy port", async () => {
  // A client chooses how many source ports it sends from; every -R line walks the whole table.
  const flood = Array.from({ length: 500 }, (_, i) => flowLine("198.18.1.2", 42000 + i, 33002, 1));
  const runner = conntrackOver(TABLE + flood.join("\n") + "\n");
  assertEquals(await conntrackTool(runner).purge([a]), [{ packets: 503, bytes: 50300 }]);
  assertEquals(runner.calls[1]!.stdin!.trim().split("\n").length, 3);
  // Where a live session's flow must stay, one by one, but only so far.
  const sibling = { ...a, proxyPort: 33002, portCount: 1, serverPort: 33002, clientPort: 42000 };
  const few = conntrackOver(TABLE + flood.slice(0, 4).join("\n") + "\n");
  assertEquals(await conntrackTool(few).purge([a], "udp", [sibling]), [{
    packets: 6,
    bytes: 600,
  }]);
  assertEquals(few.calls[1]!.stdin!.trim().split("\n").length, 5);
  const many = conntrackOver(TABLE + flood.join("\n") + "\n");
  await conntrackTool(many).purge([a], "udp", [sibling]);
  assertEquals(many.calls[1]!.stdin!.trim().split("\n").length, 3);
});

Deno.test("purge() leaves the flows of a port another live session of the client learned", async () => {
  const runner = conntrackOver(TABLE);
  const sibling = { ...a, proxyPort: 33003, portCount: 1, serverPort: 33003, clientPort: 40001 };
  const counters = await conntrackTool(runner).purge([a], "udp", [sibling, b]);
  assertEquals(counters, [{ packets: 1, bytes: 100 }]);
  assertEquals(
    runner.calls[1]!.stdin,
    "-D -p udp --orig-src 198.18.1.2 --orig-dst 198.18.1.1 --dport 33001\n",
  );
});

Deno.test("purge() spares only the flows the live session's own rule sent to its server", async () => {
  // From the sibling's learned port, but sent elsewhere by another rule (a forward session's,
  // port ranges overlapping) or by none (to the proxy itself): they go.
  const table = [
    flowLine("198.18.1.2", 40000, 33001, 1),
    flowLine("198.18.1.2", 40001, 33002, 2, "198.18.2.7"),
    flowLine("198.18.1.2", 40001, 33003, 4, "198.18.1.1"),
  ].join("\n");
  const sibling = { ...a, proxyPort: 33002, portCount: 2, serverPort: 33002, clientPort: 40001 };
  const runner = conntrackOver(table);
  assertEquals(await conntrackTool(runner).purge([a], "udp", [sibling]), [
    { packets: 7, bytes: 700 },
  ]);
});

Deno.test("purge() deletes nothing when the sessions have no flows, and one flow at a time without -R", async () => {
  const empty = conntrackOver("");
  assertEquals(await conntrackTool(empty).purge([a]), [{ packets: 0, bytes: 0 }]);
  assertEquals(empty.calls.length, 1);
  const old = conntrackOver(TABLE, { refuseBatch: true });
  assertEquals(await conntrackTool(old).purge([b, a]), [
    { packets: 4, bytes: 400 },
    { packets: 3, bytes: 300 },
  ]);
  assertEquals(old.calls.map((c) => c.args[0]), ["-L", "-R", "-D", "-D", "-D"]);
});

Deno.test("purge() deletes the other flows when one expires as it is deleted", async () => {
  // conntrack-tools 1.4.7 stops a -R run at the entry that vanished; the fallback goes on.
  const stopped = conntrackOver(TABLE, { vanish: 40000 });
  assertEquals(await conntrackTool(stopped).purge([a, b]), [
    { packets: 2, bytes: 200 },
    { packets: 4, bytes: 400 },
  ]);
  assertEquals(stopped.calls.map((c) => c.args[0]), ["-L", "-R", "-D", "-D", "-D"]);
  // Without -R (1.4.6), the lone -D of that flow fails the same way.
  const old = conntrackOver(TABLE, { refuseBatch: true, vanish: 40000 });
  assertEquals(await conntrackTool(old).purge([a, b]), [
    { packets: 2, bytes: 200 },
    { packets: 4, bytes: 400 },
  ]);
});

Deno.test("purge() counts once a line conntrack printed twice", async () => {
  // conntrack-tools 1.4.8 prints its previous line again for an entry that vanished.
  const runner = conntrackOver(TABLE, { vanish: 40001, reprint: true });
  assertEquals(await conntrackTool(runner).purge([a, b]), [
    { packets: 1, bytes: 100 },
    { packets: 4, bytes: 400 },
  ]);
});

Deno.test("purge() tries every flow before it fails: each one left keeps forwarding", async () => {
  const runner = conntrackOver(TABLE, { refuseBatch: true, fail: 33001 });
  await assertRejects(() => conntrackTool(runner).purge([a, b]), Error, "Bad file");
  assertEquals(runner.calls.map((c) => c.args[0]), ["-L", "-R", "-D", "-D", "-D"]);
});

const PROXY = { ip: "198.18.1.1", port: 33001 };

Deno.test("listMarked() lists one family, by the mark, and reads UDP and TCP flows", async () => {
  const table = conntrackTable([
    entryLine("udp", { ip: "198.18.1.2", port: 40000 }, PROXY, { mark: SESSION_CT_MARK }),
    entryLine("tcp", { ip: "198.18.1.3", port: 50000 }, { ip: "198.18.1.1", port: 5000 }, {
      mark: SESSION_CT_MARK,
      packets: 3,
    }),
    // Not ours: no mark, or another mark (an administrator's).
    entryLine("udp", { ip: "198.18.1.2", port: 40001 }, PROXY),
    entryLine("udp", { ip: "198.18.1.2", port: 40002 }, PROXY, { mark: SESSION_CT_MARK + 1 }),
    // conntrack writes a client under ::/96 with a dotted-quad tail.
    entryLine("udp", { ip: "::198.18.1.2", port: 40003 }, { ip: "2001:db8::1", port: 33001 }, {
      mark: SESSION_CT_MARK,
    }),
    // Ours but neither UDP nor TCP: never a session's.
    "icmp     1 29 src=198.18.1.2 dst=198.18.1.1 type=8 code=0 id=7 packets=1 bytes=84 " +
    "src=198.18.1.1 dst=198.18.1.2 type=0 code=0 id=7 packets=0 bytes=0 mark=2020605952 use=1",
    "sctp     132 29 ESTABLISHED src=198.18.1.2 dst=198.18.1.1 sport=40004 dport=33001 " +
    "src=198.18.2.2 dst=198.18.1.2 sport=33001 dport=40004 mark=2020605952 use=1",
  ]);
  const conntrack = conntrackTool(table.runner);
  const flows = [
    ...await conntrack.listMarked(SESSION_CT_MARK, 4),
    ...await conntrack.listMarked(SESSION_CT_MARK, 6),
  ];
  assertEquals(table.runner.calls.map((c) => c.args), [
    ["-L", "-f", "ipv4", "--mark", "0x78700000"],
    ["-L", "-f", "ipv6", "--mark", "0x78700000"],
  ]);
  assertEquals(
    flows.map((f) =>
      `${f.protocol} ${f.src.text}:${f.sport}>${f.dst.text}:${f.dport} ${f.counters.packets}`
    ),
    [
      "udp 198.18.1.2:40000>198.18.1.1:33001 1",
      "tcp 198.18.1.3:50000>198.18.1.1:5000 3",
      `udp ${parseIp("::c612:102")!.text}:40003>2001:db8::1:33001 1`,
    ],
  );
});

Deno.test("listMarked() fails when conntrack does", async () => {
  const runner = recordingRunner(() => ({ code: 1, stderr: "Operation not permitted" }));
  await assertRejects(
    () => conntrackTool(runner).listMarked(SESSION_CT_MARK, 4),
    Error,
    "conntrack -L failed: Operation not permitted",
  );
});

Deno.test("removeMarked() deletes only flows with the mark, one line per selector in one run", async () => {
  const client = parseIp("198.18.1.2")!;
  const proxy = parseIp("198.18.1.1")!;
  const table = conntrackTable([
    entryLine("udp", { ip: "198.18.1.2", port: 40000 }, PROXY, { mark: SESSION_CT_MARK }),
    entryLine("udp", { ip: "198.18.1.2", port: 40001 }, PROXY, { mark: SESSION_CT_MARK }),
    // Same client, proxy and port, without our mark: another rule's, or none's.
    entryLine("udp", { ip: "198.18.1.2", port: 40002 }, PROXY),
    entryLine("udp", { ip: "198.18.1.2", port: 40003 }, PROXY, { mark: 1 }),
    entryLine("udp", { ip: "2001:db8::2", port: 40000 }, { ip: "2001:db8::1", port: 33001 }, {
      mark: SESSION_CT_MARK,
    }),
    entryLine("tcp", { ip: "198.18.1.2", port: 50000 }, { ip: "198.18.1.1", port: 5000 }, {
      mark: SESSION_CT_MARK,
    }),
  ]);
  await conntrackTool(table.runner).removeMarked([
    { protocol: "udp", client, proxy, proxyPort: 33001 },
    {
      protocol: "udp",
      client: parseIp("2001:db8::2")!,
      proxy: parseIp("2001:db8::1")!,
      proxyPort: 33001,
      clientPort: 40000,
    },
    { protocol: "tcp", client, proxy, proxyPort: 5000 },
  ], SESSION_CT_MARK);
  assertEquals(table.runner.calls.map((c) => c.args), [["-R", "-"]]);
  assertEquals(
    table.runner.calls[0]!.stdin,
    [
      "-D -p udp --orig-src 198.18.1.2 --orig-dst 198.18.1.1 --dport 33001 --mark 0x78700000",
      "-D -f ipv6 -p udp --orig-src 2001:db8::2 --orig-dst 2001:db8::1 --sport 40000 --dport 33001 --mark 0x78700000",
      "-D -p tcp --orig-src 198.18.1.2 --orig-dst 198.18.1.1 --dport 5000 --mark 0x78700000",
      "",
    ].join("\n"),
  );
  assertEquals(parseFlows(table.entries().join("\n")).map((f) => f.sport), [40002, 40003]);
  // Nothing to delete: no conntrack at all.
  await conntrackTool(table.runner).removeMarked([], SESSION_CT_MARK);
  assertEquals(table.runner.calls.length, 1);
});

Deno.test("purgeUntranslated() deletes only flows no rule translated, every session's in one run", async () => {
  const client = parseIp("198.18.1.2")!;
  const other = parseIp("198.18.1.3")!;
  const proxy = parseIp("198.18.1.1")!;
  const table = conntrackTable([
    // Met no rule: the reply comes from the proxy itself.
    entryLine("udp", { ip: "198.18.1.2", port: 40000 }, PROXY),
    entryLine("udp", { ip: "198.18.1.2", port: 40001 }, { ip: "198.18.1.1", port: 33002 }),
    entryLine("udp", { ip: "198.18.1.3", port: 40000 }, PROXY),
    // Translated: the reply comes from the server.
    entryLine("udp", { ip: "198.18.1.2", port: 40002 }, PROXY, { server: "198.18.2.2" }),
    entryLine("udp", { ip: "198.18.1.3", port: 40001 }, PROXY, { server: "198.18.2.2" }),
  ]);
  await conntrackTool(table.runner).purgeUntranslated([
    { client, proxy, proxyPort: 33001, portCount: 2 },
    { client: other, proxy, proxyPort: 33001, portCount: 1 },
  ], "udp");
  assertEquals(table.runner.calls.map((c) => c.args), [["-R", "-"]]);
  assertEquals(table.runner.calls[0]!.stdin!.trim().split("\n").length, 3);
  assertEquals(parseFlows(table.entries().join("\n")).map((f) => `${f.src}:${f.sport}`), [
    "198.18.1.2:40002",
    "198.18.1.3:40001",
  ]);
});
