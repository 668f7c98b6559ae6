/**
 * The DNAT service's look at the TCP connections a process holds (held_sockets.ts: pidfd_getfd
 * on each of its sockets) against the kernel's own tables, on a process the test starts in a
 * namespace it creates: the same established connections, IPv4, IPv6 and IPv4-mapped, each once
 * however many fds hold it (`sshd -i` holds its connection twice), and none of its listener, UDP
 * or Unix sockets; nothing for a process gone; a process in another net_cls group refused.
 */
import { assertEquals, assertMatch, assertOk } from "../_assert.ts";
import { must } from "../testbed/exec.ts";
import { addNamespaces } from "../testbed/netns.ts";
import { namespaceName } from "../testbed/prefix.ts";
import { PYTHON } from "../testbed/paths.ts";
import { readUntil } from "../testbed/lines.ts";
import { libcProcReader } from "../../src/platform/proc_readers.ts";
import { heldTcp, withHeldTcp } from "../../src/platform/held_sockets.ts";
import { parseTcpTable, socketInode } from "../../src/dnat/procfs.ts";

const V4 = "198.18.79.1";
const V6 = "2001:db8:79::1";

/** Connects to itself over IPv4, IPv6 and a dual-stack listener, then waits (30 s at most). */
const HOLDER = `
import os, socket, time
held = []
for family, listen_at, connect_to in [
    (socket.AF_INET, "${V4}", "${V4}"),
    (socket.AF_INET6, "${V6}", "${V6}"),
    (socket.AF_INET6, "::", "${V4}"),
]:
    listener = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind((listen_at, 0))
    listener.listen()
    client = socket.create_connection((connect_to, listener.getsockname()[1]))
    server, _ = listener.accept()
    held += [listener, client, server]
# One connection held by two more fds, as sshd -i holds its client's (stdin and stdout).
held += [os.dup(held[1].fileno()), os.dup(held[1].fileno())]
held.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
held += list(socket.socketpair())
print("ready", flush=True)
time.sleep(30)
`;

Deno.test("heldTcp() sees a process's established TCP connections as the TCP tables list them", async () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  const ns = namespaceName("ht");
  let holder: Deno.ChildProcess | undefined;
  try {
    await addNamespaces([ns], cleanups);
    const inNs = (...argv: string[]) => must(["ip", "netns", "exec", ns, ...argv]);
    await inNs("ip", "link", "set", "lo", "up");
    await inNs("ip", "addr", "add", `${V4}/32`, "dev", "lo");
    await inNs("ip", "-6", "addr", "add", `${V6}/128`, "dev", "lo", "nodad");
    holder = new Deno.Command("ip", {
      args: ["netns", "exec", ns, PYTHON, "-c", HOLDER],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
    await readUntil(reader, "ready\n", 20_000, () => "the holder did not start");
    await reader.cancel();
    // ip netns exec execs python: the child's pid is the holder's.
    const pid = holder.pid;

    const refusals: string[] = [];
    const proc = withHeldTcp(libcProcReader(), (why) => refusals.push(why));
    const held = await proc.heldTcp!(pid);
    const inodes = new Set(
      (await proc.linkTargets(`/proc/${pid}/fd`)).map(socketInode).filter((i) => i !== undefined),
    );
    const tables = await proc.readTexts([`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]);
    const listed = [...tables.values()].flatMap(parseTcpTable).filter((c) => inodes.has(c.inode));
    const order = (cs: typeof listed) => [...cs].sort((a, b) => a.inode - b.inode);
    assertEquals(listed.length, 6, JSON.stringify(listed));
    assertEquals(refusals, []);
    assertEquals(order(held!), order(listed));
    // The dual-stack listener's connection is IPv4 on both ends, as sessions name it.
    assertOk(held!.filter((c) => c.local.ip.text === V4).length === 4, JSON.stringify(held));
    // A process in another cgroup v1 net_cls/net_prio group than the reader's (this host has
    // none: the holder is in no such group, the reader says it is in one) is not looked at.
    const across = heldTcp(pid, ["net_cls,net_prio:/shaped"]);
    assertOk(!Array.isArray(across), JSON.stringify(across));
    assertMatch(across.refused, /another cgroup v1 net_cls\/net_prio group/);
    assertEquals(order(heldTcp(pid, []) as typeof listed), order(listed));

    holder.kill("SIGKILL");
    await holder.status;
    const gone = holder.pid;
    holder = undefined;
    assertEquals(await proc.heldTcp!(gone), []);
  } finally {
    if (holder) {
      holder.kill("SIGKILL");
      await holder.status;
    }
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
});
