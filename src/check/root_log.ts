/**
 * `check system` on root's log file: `<log_directory>/root/` must be root's and writable by root
 * only, and its `xferproxy.log` root's regular file, writable by root only, or a proxy group
 * member could forge or erase the lines of the DNAT service and the privileged calls.
 * @module
 */

import {
  logFileFor,
  logFileProblem,
  ROOT_LOG_DIR_MODE,
  ROOT_LOG_MODE,
  rootDirectoryProblem,
} from "../log/files.ts";
import { type Finding, finding } from "./findings.ts";
import type { CheckHost } from "./host.ts";

/** Findings on root's log directory and file in `logDirectory`; none while root has not logged. */
export async function checkRootLog(host: CheckHost, logDirectory: string): Promise<Finding[]> {
  const { path } = logFileFor(logDirectory, 0);
  const dir = path.slice(0, path.lastIndexOf("/"));
  const dirInfo = await host.stat(dir);
  if (!dirInfo) return []; // root makes it with its first line
  const dirProblem = rootDirectoryProblem(dirInfo, true);
  if (dirProblem) {
    return [
      finding.error(
        "logs.root_dir",
        `root's log directory ${dir} ${dirProblem}: the proxy group could forge or erase root's lines`,
        `chown root ${dir} && chmod ${
          ROOT_LOG_DIR_MODE.toString(8)
        } ${dir}, after checking what is in it`,
      ),
    ];
  }
  const info = await host.stat(path);
  if (!info) return [];
  const problem = logFileProblem(
    {
      isFile: info.isFile ?? !info.isDirectory,
      nlink: info.nlink ?? 1,
      uid: info.uid,
      mode: info.mode,
    },
    true,
  );
  if (!problem) return [];
  return [
    finding.error(
      "logs.root_file",
      `root's log file ${path} ${problem}`,
      `chown root ${path} && chmod ${ROOT_LOG_MODE.toString(8)} ${path}, or move it away`,
    ),
  ];
}
