/**
 * Which file in `<log_directory>` a process writes, and what a file or
 * directory there must be before it is written. Sessions share
 * `<log_directory>/xferproxy.log` through the directory's group; root (the
 * DNAT service, `dnat` calls through sudo, the forward daemon) writes
 * `<log_directory>/root/xferproxy.log`, in a directory only root may write,
 * so no group member can forge or erase its lines (renaming the directory
 * away only makes root refuse a stand-in and log to syslog). Pure:
 * platform/log_outputs.ts and `check system` apply it.
 * @module
 */

/** The file's name, the sessions' and root's alike. */
export const LOG_FILE_NAME = "xferproxy.log";
/** Root's directory in `<log_directory>`: root's, writable by root only. */
export const ROOT_LOG_DIR_NAME = "root";
/** The mode root's directory is created with (the log directory's setgid gives it its group). */
export const ROOT_LOG_DIR_MODE = 0o750;
/** The mode root's file is created with: root writes, the group reads. */
export const ROOT_LOG_MODE = 0o640;

/** The file a process writes in `directory`. */
export interface LogFileChoice {
  readonly path: string;
  /** Root's own file: only root may write it, so only root's lines are in it. */
  readonly root: boolean;
}

/** Root's lines go to root's file, everyone else's to the shared one. */
export function logFileFor(directory: string, uid: number): LogFileChoice {
  const dir = directory.replace(/\/+$/, "") || "/";
  const root = uid === 0;
  const base = dir === "/" ? "" : dir;
  return { path: `${base}/${root ? `${ROOT_LOG_DIR_NAME}/` : ""}${LOG_FILE_NAME}`, root };
}

/** What an open descriptor (or lstat) says about a file. */
export interface FileFacts {
  readonly isFile: boolean;
  readonly isSymlink?: boolean;
  readonly nlink: number;
  readonly uid: number;
  readonly mode: number;
}

/** `0640`: permission bits as an administrator types them. */
export function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/**
 * Why a file in the log directory must not be written, or undefined when it may. Every such file
 * must be a regular file with one link (a FIFO would hang its opener, a hard link would send the
 * lines into another file); root's must also be root's and writable by nobody else.
 */
export function logFileProblem(facts: FileFacts, root: boolean): string | undefined {
  if (facts.isSymlink) return "is a symbolic link";
  if (!facts.isFile) return "is not a regular file (a FIFO, a device or a directory)";
  if (facts.nlink !== 1) return `has ${facts.nlink} hard links; it must have one`;
  if (!root) return undefined;
  if (facts.uid !== 0) return `is owned by uid ${facts.uid}; root's lines need root's file`;
  if ((facts.mode & 0o022) !== 0) {
    return `is writable by others than root (mode ${modeText(facts.mode)}); it must be 0640`;
  }
  return undefined;
}

/** What lstat says about a directory. */
export interface DirectoryFacts {
  readonly isDirectory: boolean;
  readonly uid: number;
  readonly mode: number;
}

/**
 * Why an entry root owns in this directory could be replaced or removed by someone else, or
 * undefined when it cannot: the directory is root's and writable by root only, or (unless
 * `strict`, as for root's log directory) sticky like /tmp, where only an entry's owner may rename
 * or remove it.
 */
export function rootDirectoryProblem(facts: DirectoryFacts, strict = false): string | undefined {
  const sticky = !strict && (facts.mode & 0o1000) !== 0;
  if (!facts.isDirectory) return "is not a directory";
  if (facts.uid !== 0) return `is owned by uid ${facts.uid}, not root`;
  if ((facts.mode & 0o022) !== 0 && !sticky) {
    return `is writable by others than root${strict ? "" : " without the sticky bit"} (mode ${
      modeText(facts.mode)
    })`;
  }
  return undefined;
}
