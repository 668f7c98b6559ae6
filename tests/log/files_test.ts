/**
 * Which log file a process writes, and what a file or directory there must be:
 * root's lines never go where the proxy group can write.
 */
import { assertEquals, assertMatch } from "../_assert.ts";
import { logFileFor, logFileProblem, rootDirectoryProblem } from "../../src/log/files.ts";

Deno.test("root writes <log_directory>/root/xferproxy.log, everyone else the shared file", () => {
  assertEquals(logFileFor("/var/log/xferproxy", 0), {
    path: "/var/log/xferproxy/root/xferproxy.log",
    root: true,
  });
  assertEquals(logFileFor("/var/log/xferproxy/", 1001), {
    path: "/var/log/xferproxy/xferproxy.log",
    root: false,
  });
  // A mode that may not ask for its uid says -1: never root's file.
  assertEquals(logFileFor("/logs", -1).root, false);
  assertEquals(logFileFor("/", 0).path, "/root/xferproxy.log");
});

const regular = { isFile: true, isSymlink: false, nlink: 1, uid: 0, mode: 0o100640 };

Deno.test("a log file must be a regular file with one link; root's must be root's, 0640 or less", () => {
  assertEquals(logFileProblem(regular, true), undefined);
  assertEquals(logFileProblem({ ...regular, uid: 1001, mode: 0o100660 }, false), undefined);
  assertMatch(logFileProblem({ ...regular, isSymlink: true }, false)!, /symbolic link/);
  assertMatch(logFileProblem({ ...regular, isFile: false }, false)!, /FIFO/);
  assertMatch(logFileProblem({ ...regular, nlink: 2 }, false)!, /2 hard links/);
  assertMatch(logFileProblem({ ...regular, uid: 1001 }, true)!, /uid 1001/);
  assertMatch(logFileProblem({ ...regular, mode: 0o100660 }, true)!, /mode 0660/);
  assertMatch(logFileProblem({ ...regular, mode: 0o100642 }, true)!, /mode 0642/);
});

Deno.test("root's entries are safe in root's unwritable or sticky directories; its log dir is never sticky", () => {
  const dir = { isDirectory: true, uid: 0, mode: 0o40755 };
  assertEquals(rootDirectoryProblem(dir), undefined);
  assertEquals(rootDirectoryProblem({ ...dir, mode: 0o41777 }), undefined);
  assertMatch(rootDirectoryProblem({ ...dir, mode: 0o42770 })!, /mode 2770/);
  assertMatch(rootDirectoryProblem({ ...dir, uid: 1001 })!, /uid 1001/);
  assertMatch(rootDirectoryProblem({ ...dir, isDirectory: false })!, /not a directory/);
  assertEquals(rootDirectoryProblem({ ...dir, mode: 0o42750 }, true), undefined);
  assertMatch(rootDirectoryProblem({ ...dir, mode: 0o43770 }, true)!, /mode 3770/);
});
