import { assertEquals, assertRejects } from "../_assert.ts";
import { processFacts, sshOrigin } from "../../src/dnat/ancestry.ts";
import { NotAuthorizedError } from "../../src/dnat/errors.ts";
import {
  netClassGroups,
  parseSockaddr,
  parseStat,
  parseTcpTable,
  type ProcReader,
  startMs,
  type TcpConnection,
} from "../../src/dnat/procfs.ts";
import { parseIp } from "../../src/net/ip.ts";
import { fakeProc, type FakeProcess, type FakeTcp, hex4, hex6, statLine } from "../_fakes/proc.ts";

const USER = 1005;
const CLIENT = hex4("198.18.1.2", 48686);
const PROXY = hex4("198.18.1.1", 22);

/** sshd's listener → its root monitor (holding the client socket) → the user's sshd → the session. */
function sessionTree(extra: Partial<Record<number, Partial<FakeProcess>>> = {}): FakeProcess[] {
  const tree: FakeProcess[] = [
    { pid: 1, ppid: 0, uid: 0, comm: "systemd" },
    { pid: 500, ppid: 1, uid: 0, comm: "sshd", sockets: [10] },
    { pid: 600, ppid: 500, uid: 0, comm: "sshd", sockets: [4242, 11] },
    { pid: 601, ppid: 600, uid: USER, comm: "sshd", sockets: [4242, 12] },
    { pid: 700, ppid: 601, uid: USER, comm: "xferproxy", startTicks: 123456 },
  ];
  return tree.map((p) => ({ ...p, ...extra[p.pid] }));
}

const CONNECTION: FakeTcp = { local: PROXY, remote: CLIENT, inode: 4242 };

async function origin(tree: FakeProcess[], tcp = [CONNECTION], pid = 700) {
  const proc = fakeProc(tree, tcp);
  const facts = await processFacts(proc, pid);
  if (!facts) throw new Error("no facts");
  return sshOrigin(proc, facts);
}

Deno.test("parseStat() reads names with spaces and parentheses, the start and a zombie's status", () => {
  const line = statLine({ pid: 42, ppid: 7, uid: 0, comm: "a) (b", startTicks: 99, exitCode: 256 });
  assertEquals(parseStat(line), {
    pid: 42,
    comm: "a) (b",
    state: "Z",
    ppid: 7,
    startTicks: 99,
    exitCode: 256,
  });
  assertEquals(parseStat("garbage"), undefined);
});

Deno.test("parseTcpTable() reads established IPv4, IPv6 and IPv4-mapped connections only", () => {
  const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 1, 2];
  const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const header = "  sl  local_address rem_address   st ...\n";
  const row = (local: string, remote: string, st: string, inode: number) =>
    `   0: ${local} ${remote} ${st} 00000000:00000000 00:00000000 00000000  0 0 ${inode} 1 0 20 4 30 10 -1\n`;
  const parsed = parseTcpTable(
    header + row(PROXY, CLIENT, "01", 1) + row(PROXY, CLIENT, "0A", 2) +
      row(hex6(v6, 22), hex6(mapped, 5000), "01", 3),
  );
  assertEquals(
    parsed.map((c) =>
      `${c.local.ip.text}:${c.local.port} ${c.remote.ip.text}:${c.remote.port} ${c.inode}`
    ),
    ["198.18.1.1:22 198.18.1.2:48686 1", "2001:db8::1:22 198.18.1.2:5000 3"],
  );
});

Deno.test("parseSockaddr() reads IPv4, IPv6 and IPv4-mapped addresses as sessions name them", () => {
  const v4 = new Uint8Array(16);
  v4.set([2, 0, 0xbe, 0x2e, 198, 18, 1, 2]);
  assertEquals(parseSockaddr(v4), { ip: parseIp("198.18.1.2")!, port: 48686 });
  const v6 = new Uint8Array(28);
  v6.set([10, 0, 0, 22]);
  v6.set(parseIp("2001:db8::1")!.bytes, 8);
  assertEquals(parseSockaddr(v6), { ip: parseIp("2001:db8::1")!, port: 22 });
  const mapped = v6.slice();
  mapped.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 1, 2], 8);
  assertEquals(parseSockaddr(mapped), { ip: parseIp("198.18.1.2")!, port: 22 });
  // AF_UNIX, and a sockaddr_in6 cut short.
  assertEquals(parseSockaddr(new Uint8Array([1, 0, ...new Uint8Array(108)])), undefined);
  assertEquals(parseSockaddr(v6.subarray(0, 20)), undefined);
});

Deno.test("netClassGroups() names the cgroup v1 net_cls and net_prio groups only", () => {
  const v1 = "12:net_cls,net_prio:/shaped\n11:memory:/system.slice/sshd.service\n" +
    "3:net_prio:/\n0::/system.slice/sshd.service\n";
  assertEquals(netClassGroups(v1), ["net_cls,net_prio:/shaped", "net_prio:/"]);
  // cgroup v2 alone: nothing a copied socket could change.
  assertEquals(netClassGroups("0::/system.slice/xferproxy-dnat.service\n"), []);
});

Deno.test("processFacts() gives the start as epoch ms from the boot time and the start ticks", async () => {
  const facts = await processFacts(fakeProc(sessionTree()), 700);
  assertEquals([facts?.uid, facts?.start], [USER, startMs(1_796_000_000, 123456)]);
  assertEquals(facts?.start, 1_796_000_000_000 + 1_234_560);
  assertEquals(await processFacts(fakeProc(sessionTree()), 999), undefined);
});

Deno.test("sshOrigin() finds the client and proxy ends of the monitor's TCP connection", async (t) => {
  await t.step("the session right under the user's sshd", async () => {
    const found = await origin(sessionTree());
    assertEquals(
      [found.sshd, found.connection.remote.ip.text, found.connection.remote.port],
      [600, "198.18.1.2", 48686],
    );
    assertEquals([found.connection.local.ip.text, found.connection.local.port], ["198.18.1.1", 22]);
  });
  await t.step(
    "a shell in between (sshd runs the ForceCommand through the login shell)",
    async () => {
      const tree = [
        ...sessionTree({ 700: { ppid: 650 } }),
        { pid: 650, ppid: 601, uid: USER, comm: "sh" },
      ];
      assertEquals((await origin(tree)).sshd, 600);
    },
  );
  await t.step("a socket listed twice (the table read in pieces while others change)", async () => {
    assertEquals((await origin(sessionTree(), [CONNECTION, CONNECTION])).connection.inode, 4242);
  });
  await t.step("a socket skipped by one read of the table is found by the next", async () => {
    const proc = fakeProc(sessionTree(), [CONNECTION]);
    let tableReads = 0;
    const skipping: ProcReader = {
      ...proc,
      readTexts: (paths) =>
        paths.some((p) => p.endsWith("/net/tcp") && tableReads++ === 0)
          ? fakeProc(sessionTree(), []).readTexts(paths)
          : proc.readTexts(paths),
    };
    const facts = await processFacts(skipping, 700);
    if (!facts) throw new Error("no facts");
    assertEquals((await sshOrigin(skipping, facts)).connection.inode, 4242);
    assertEquals(tableReads, 2);
  });
  await t.step("a process the user named sshd is passed like any other of theirs", async () => {
    const tree = [
      ...sessionTree({ 700: { ppid: 650 } }),
      { pid: 650, ppid: 601, uid: USER, comm: "sshd", sockets: [9999] },
    ];
    const found = await origin(tree, [CONNECTION, { ...CONNECTION, inode: 9999 }]);
    assertEquals(found.sshd, 600);
  });
});

Deno.test("sshOrigin() reads the monitor's sockets themselves where the reader can", async (t) => {
  const held: TcpConnection = {
    local: { ip: parseIp("198.18.1.1")!, port: 22 },
    remote: { ip: parseIp("198.18.1.2")!, port: 48686 },
    inode: 4242,
  };
  /** A reader whose sockets say `connections` (undefined: it cannot), over an empty TCP table. */
  const reading = (connections: TcpConnection[] | undefined) => {
    const proc = fakeProc(sessionTree(), []);
    const asked: number[] = [];
    return {
      proc: {
        ...proc,
        heldTcp: (pid: number) => (asked.push(pid), Promise.resolve(connections)),
      },
      asked,
      tableReads: () => proc.reads.filter((p) => p.includes("/net/tcp")).length,
    };
  };
  const originOf = async (proc: ProcReader) => sshOrigin(proc, (await processFacts(proc, 700))!);
  await t.step("the one connection, without reading a TCP table", async () => {
    const r = reading([held]);
    assertEquals(await originOf(r.proc), { sshd: 600, connection: held });
    assertEquals(r.asked, [600]);
    assertEquals(r.tableReads(), 0);
  });
  await t.step("two, or none: refused as from the tables", async () => {
    await assertRejects(
      () => originOf(reading([held, { ...held, inode: 4243 }]).proc),
      NotAuthorizedError,
      "holds 2 established TCP connections",
    );
    await assertRejects(() => originOf(reading([]).proc), NotAuthorizedError, "holds 0");
  });
  await t.step("a monitor whose pid went to another process meanwhile: refused", async () => {
    const tree = sessionTree();
    let reused = false;
    const proc = fakeProc(tree, []);
    const racing: ProcReader = {
      // Once its sockets were read, pid 600 is another process, started later.
      readTexts: (paths) =>
        (reused ? fakeProc(sessionTree({ 600: { startTicks: 999999 } }), []) : proc)
          .readTexts(paths),
      linkTargets: proc.linkTargets,
      heldTcp: () => ((reused = true), Promise.resolve([held])),
    };
    await assertRejects(() => originOf(racing), NotAuthorizedError, "ended while");
  });
  await t.step("a reader that cannot: the TCP tables", async () => {
    const proc = fakeProc(sessionTree(), [CONNECTION]);
    const r = { ...proc, heldTcp: () => Promise.resolve(undefined) };
    assertEquals((await originOf(r)).connection.inode, 4242);
    assertEquals(proc.reads.filter((p) => p.endsWith("/net/tcp")).length, 1);
  });
});

Deno.test("sshOrigin() refuses whatever is not a proxy user's SSH session", async (t) => {
  const refused = (name: string, tree: FakeProcess[], tcp = [CONNECTION], pid = 700) =>
    t.step(name, async () => {
      await assertRejects(() => origin(tree, tcp, pid), NotAuthorizedError);
    });
  await refused("started from sudo, su or cron (a root ancestor that is not sshd)", [
    ...sessionTree({ 700: { ppid: 650 } }),
    { pid: 650, ppid: 601, uid: 0, comm: "sudo" },
  ]);
  await refused("no sshd at all up to init", [
    { pid: 1, ppid: 0, uid: 0, comm: "systemd" },
    { pid: 700, ppid: 1, uid: USER, comm: "xferproxy" },
  ]);
  await refused("another user's process in between", [
    ...sessionTree({ 700: { ppid: 650 } }),
    { pid: 650, ppid: 601, uid: 1006, comm: "sh" },
  ]);
  await refused("the monitor holds no TCP connection", sessionTree(), []);
  await refused("the monitor holds two", sessionTree({ 600: { sockets: [4242, 4243] } }), [
    CONNECTION,
    { ...CONNECTION, remote: hex4("198.18.1.3", 40000), inode: 4243 },
  ]);
  await refused("the monitor's socket is not established", sessionTree(), [
    { ...CONNECTION, state: "0A" },
  ]);
  await refused("a root session", sessionTree({ 700: { uid: 0 } }));
  await refused("a chain deeper than any sshd session", [
    ...sessionTree({ 700: { ppid: 800 } }),
    ...Array.from({ length: 10 }, (_, i) => ({
      pid: 800 + i,
      ppid: i === 9 ? 601 : 801 + i,
      uid: USER,
      comm: "sh",
    })),
  ]);
});
