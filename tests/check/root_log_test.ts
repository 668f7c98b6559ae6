/**
 * `check system` on root's log: `<log_directory>/root/` and its xferproxy.log must be out of
 * the proxy group's reach.
 */
import { assertEquals } from "../_assert.ts";
import { checkRootLog } from "../../src/check/root_log.ts";
import type { CheckHost, FileInfo } from "../../src/check/host.ts";

const DIR = "/var/log/xferproxy/root";
const FILE = `${DIR}/xferproxy.log`;
const GOOD_DIR: FileInfo = { uid: 0, gid: 990, mode: 0o42750, isDirectory: true };
const GOOD_FILE: FileInfo = { uid: 0, gid: 990, mode: 0o100640, isDirectory: false, nlink: 1 };

function host(files: Record<string, FileInfo>): CheckHost {
  return {
    root: "/",
    readText: () => Promise.resolve(undefined),
    stat: (path) => Promise.resolve(files[path]),
    list: () => Promise.resolve([]),
    run: () => Promise.resolve(undefined),
  };
}

async function ids(files: Record<string, FileInfo>): Promise<string[]> {
  return (await checkRootLog(host(files), "/var/log/xferproxy")).map((f) =>
    `${f.id}: ${f.message}`
  );
}

Deno.test("root's log directory and file pass when root's and out of the group's reach", async () => {
  assertEquals(await ids({}), []);
  assertEquals(await ids({ [DIR]: GOOD_DIR }), []);
  assertEquals(await ids({ [DIR]: GOOD_DIR, [FILE]: GOOD_FILE }), []);
});

Deno.test("a group-writable or member's root log directory, or a writable or linked file, is an error", async () => {
  assertEquals(await ids({ [DIR]: { ...GOOD_DIR, mode: 0o42770 } }), [
    `logs.root_dir: root's log directory ${DIR} is writable by others than root (mode 2770): the proxy group could forge or erase root's lines`,
  ]);
  assertEquals(await ids({ [DIR]: { ...GOOD_DIR, uid: 1001 } }), [
    `logs.root_dir: root's log directory ${DIR} is owned by uid 1001, not root: the proxy group could forge or erase root's lines`,
  ]);
  assertEquals(await ids({ [DIR]: GOOD_DIR, [FILE]: { ...GOOD_FILE, mode: 0o100660 } }), [
    `logs.root_file: root's log file ${FILE} is writable by others than root (mode 0660); it must be 0640`,
  ]);
  assertEquals(await ids({ [DIR]: GOOD_DIR, [FILE]: { ...GOOD_FILE, nlink: 2 } }), [
    `logs.root_file: root's log file ${FILE} has 2 hard links; it must have one`,
  ]);
  assertEquals(await ids({ [DIR]: GOOD_DIR, [FILE]: { ...GOOD_FILE, isFile: false } }), [
    `logs.root_file: root's log file ${FILE} is not a regular file (a FIFO, a device or a directory)`,
  ]);
});
