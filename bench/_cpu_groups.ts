/**
 * The DNAT service in a CPU group of its own, as systemd runs it: its unit
 * is a cgroup of its own, beside ssh.service and the users' slices, with
 * the same weight. On a test host everything the benchmark starts (sshd,
 * sessions, clients, the internal servers, the service) is one group, where
 * the one service process weighs as much as any one of hundreds of busy
 * session processes. Here: the benchmark's process tree moves into one
 * group (`<prefix>-others`), the service into another (`<prefix>-dnat`), each
 * with the default weight, for the time of `fn`; then all moves back and
 * the groups go. cgroup v1's cpu controller (this host's) or v2's.
 * @module
 */

import { PREFIX } from "../tests/testbed/prefix.ts";

const V1 = "/sys/fs/cgroup/cpu";
const V2 = "/sys/fs/cgroup";

/** The cpu hierarchy's root, or undefined when this host offers none to write. */
async function cpuRoot(): Promise<string | undefined> {
  for (const root of [V1, V2]) {
    const controllers = await Deno.readTextFile(`${root}/cgroup.subtree_control`).catch(() => "");
    if (root === V1 ? await exists(`${V1}/cpu.shares`) : controllers.includes("cpu")) return root;
  }
  return undefined;
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** Every process whose parent chain reaches `ancestor` (itself included). */
async function descendants(ancestor: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`).catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid) parents.set(Number(entry.name), ppid);
  }
  return [...parents.keys(), ancestor].filter((pid) => {
    for (let p: number | undefined = pid, hops = 0; p && hops < 64; p = parents.get(p), hops++) {
      if (p === ancestor) return true;
    }
    return false;
  });
}

async function processesIn(group: string): Promise<number[]> {
  const listed = await Deno.readTextFile(`${group}/cgroup.procs`).catch(() => "");
  return listed.split("\n").filter(Boolean).map(Number);
}

async function move(group: string, pids: readonly number[]): Promise<void> {
  for (const pid of pids) {
    // A process may end meanwhile; a kernel thread cannot move: neither matters here.
    await Deno.writeTextFile(`${group}/cgroup.procs`, `${pid}\n`).catch(() => {});
  }
}

/**
 * Runs `fn` with the service `servicePid` in a CPU group of its own and the rest of this
 * benchmark's processes in another; false (and `fn` not run) when the host has no cpu controller
 * to write.
 */
export async function withServiceOwnCpuGroup(
  servicePid: number,
  fn: () => Promise<void>,
): Promise<boolean> {
  const root = await cpuRoot();
  if (!root) return false;
  const dnat = `${root}/${PREFIX}-dnat`;
  const others = `${root}/${PREFIX}-others`;
  await Deno.mkdir(dnat, { recursive: true });
  await Deno.mkdir(others, { recursive: true });
  try {
    await move(others, (await descendants(Deno.pid)).filter((pid) => pid !== servicePid));
    await move(dnat, [servicePid]);
    await fn();
  } finally {
    for (const group of [dnat, others]) {
      // Bounded: a process that moved in between the read and the rmdir gets another pass.
      for (let tries = 0; tries < 20; tries++) {
        await move(root, await processesIn(group));
        try {
          await Deno.remove(group);
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  }
  return true;
}
