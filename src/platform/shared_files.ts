/**
 * Opening files in directories other users can write (the log directory and
 * the balancer state, shared by every proxy user through a group): a file
 * there may be a symlink a group member planted, pointing at something the
 * opener may write and the planter may not, or a FIFO, whose open would wait
 * for a partner forever. So every open is O_NONBLOCK (a FIFO opens at once or
 * fails, a regular file is unaffected) and O_NOCTTY; a file must be a regular
 * file with one link before (lstat) and after (fstat, same inode) it is
 * opened, is created only with O_EXCL (which never follows a symlink), and
 * gets its mode on the open descriptor (fchmod), never by path. (O_NOFOLLOW
 * would be simpler, but Deno drops it whenever permissions are restricted:
 * measured; O_NONBLOCK it keeps.) A symlink or FIFO swapped in between the
 * two checks is at worst opened without blocking, creating, truncating or
 * writing anything.
 * @module
 */

import fs from "node:fs";
import { Buffer } from "node:buffer";
import { logFileProblem, ROOT_LOG_DIR_MODE, rootDirectoryProblem } from "../log/files.ts";
import { checkRootDirectories, UntrustedPathError } from "./root_paths.ts";

const { O_APPEND, O_CREAT, O_EXCL, O_NOCTTY, O_NONBLOCK, O_RDONLY, O_WRONLY } = fs.constants;

/** A path that is a symlink, a FIFO or anything but a regular file with one link. */
export class NotRegularFileError extends Error {
  constructor(path: string, readonly why = "is a symbolic link or not a regular file") {
    super(`"${path}" ${why}; refusing to use it`);
    this.name = "NotRegularFileError";
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}

/** What node's Stats say, as log/files.ts reads them. */
function factsOf(info: fs.Stats) {
  return {
    isFile: info.isFile(),
    isSymlink: info.isSymbolicLink(),
    nlink: info.nlink,
    uid: info.uid,
    mode: info.mode,
  };
}

/** How `openChecked` treats the file it opened. */
interface CheckOptions {
  /** Root's own file: root's, writable by root only. */
  readonly root?: boolean;
}

/**
 * Opens `path` without ever blocking or following a planted link: returns the descriptor and
 * what fstat said of it. Creates it with `mode` (O_EXCL) only when `flags` has O_CREAT and it is
 * missing.
 * @throws {NotRegularFileError}
 */
function openChecked(
  path: string,
  flags: number,
  mode: number,
  options: CheckOptions = {},
): { fd: number; created: boolean; info: fs.Stats } {
  let before: fs.Stats | undefined;
  try {
    before = fs.lstatSync(path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
  if (before && !before.isFile()) throw new NotRegularFileError(path);
  const safe = flags | O_NONBLOCK | O_NOCTTY;
  let fd: number;
  try {
    fd = before || !(flags & O_CREAT)
      ? fs.openSync(path, safe & ~O_CREAT)
      : fs.openSync(path, safe | O_EXCL, mode);
  } catch (error) {
    // Something appeared since the lstat: a planted symlink, or another session's file.
    if (errorCode(error) === "EEXIST") {
      return openChecked(path, flags & ~O_CREAT, mode, options);
    }
    // ENXIO: a FIFO with no reader swapped in for writing.
    if (errorCode(error) === "ENXIO") throw new NotRegularFileError(path);
    throw error;
  }
  const after = fs.fstatSync(fd);
  const moved = before && (after.ino !== before.ino || after.dev !== before.dev);
  const problem = moved
    ? "was replaced while it was being opened"
    : logFileProblem(factsOf(after), options.root ?? false);
  if (problem) {
    fs.closeSync(fd);
    throw new NotRegularFileError(path, problem);
  }
  return { fd, created: before === undefined, info: after };
}

function openRegular(path: string, flags: number, mode: number): number {
  const { fd, info } = openChecked(path, flags, mode);
  // Every member of the directory's group must be able to use it; only the owner may change the
  // mode, and when someone else created it, they set it.
  if ((info.mode & 0o777) !== mode) {
    try {
      fs.fchmodSync(fd, mode);
    } catch { /* EPERM: someone else's file */ }
  }
  return fd;
}

/** A write the filesystem cut short (it is full): `written` bytes of the line went in. */
export class ShortWriteError extends Error {
  constructor(readonly written: number) {
    super(`only ${written} bytes written: no space left on device`);
  }
}

/** An append-only handle on a shared file (created mode 0660), for one line per write. */
export interface AppendHandle {
  /** Appends all of `text` in one write. @throws {ShortWriteError} when only part went in. */
  write(text: string): void;
  close(): void;
}

/** Opens `path` for appending, creating it 0660; throws NotRegularFileError on a symlink. */
export function openSharedAppend(path: string): AppendHandle {
  return appendHandle(openRegular(path, O_WRONLY | O_APPEND | O_CREAT, 0o660));
}

/**
 * Opens root's own file `<log_directory>/root/<name>` for appending, creating it `mode` (0640)
 * and its directory 0750 when missing. Only root may have written it: the directories above the
 * log directory are root's and writable by root alone (or sticky), the log directory is root's
 * (its group may write it: renaming `root/` away leaves root's lines in it, and a stand-in is
 * refused), `root/` is root's and writable by root only, and the file is root's regular file with
 * one link, writable by root only. Its mode is never changed once it exists.
 * @throws {UntrustedPathError} for a directory
 * @throws {NotRegularFileError} for the file
 */
export function openRootAppend(path: string, mode: number): AppendHandle {
  const dir = parentOf(path);
  const logDir = parentOf(dir);
  checkRootDirectories(parentOf(logDir));
  const top = fs.lstatSync(logDir);
  if (!top.isDirectory() || top.uid !== 0) {
    throw new UntrustedPathError(`log directory "${logDir}" must be a directory owned by root`);
  }
  try {
    fs.mkdirSync(dir, { mode: ROOT_LOG_DIR_MODE });
  } catch (error) {
    if (errorCode(error) !== "EEXIST") throw error;
  }
  const before = checkRootLogDirectory(dir);
  const { fd, created } = openChecked(path, O_WRONLY | O_APPEND | O_CREAT, mode, { root: true });
  try {
    // Swapped for a group member's directory while the file was opened: refuse what was opened.
    if (checkRootLogDirectory(dir).ino !== before.ino) {
      throw new UntrustedPathError(`directory "${dir}" was replaced while it was being opened`);
    }
    if (created) fs.fchmodSync(fd, mode);
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
  return appendHandle(fd);
}

function parentOf(path: string): string {
  return path.replace(/\/+[^/]*\/*$/, "") || "/";
}

/** `root/` in the log directory: root's directory, writable by root only. */
function checkRootLogDirectory(dir: string): fs.Stats {
  const info = fs.lstatSync(dir);
  const problem = rootDirectoryProblem(
    { isDirectory: info.isDirectory(), uid: info.uid, mode: info.mode },
    true,
  );
  if (problem) throw new UntrustedPathError(`directory "${dir}" ${problem}; refusing to use it`);
  return info;
}

function appendHandle(fd: number): AppendHandle {
  return {
    write(text) {
      const bytes = Buffer.from(text);
      const written = fs.writeSync(fd, bytes);
      if (written < bytes.length) throw new ShortWriteError(written);
    },
    close: () => fs.closeSync(fd),
  };
}

/** Reads a shared file; undefined when it does not exist. Throws NotRegularFileError on a symlink. */
export function readSharedText(path: string): string | undefined {
  let fd: number;
  try {
    fd = openRegular(path, O_RDONLY, 0o660);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
  try {
    return fs.readFileSync(fd, "utf8");
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces a shared file atomically: a fresh temporary file (O_EXCL, so
 * nothing planted is reused), mode 0660 on the descriptor, then rename,
 * which replaces a symlink at `path` rather than following it.
 */
export function replaceSharedText(path: string, text: string): void {
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  const fd = fs.openSync(temp, O_WRONLY | O_CREAT | O_EXCL, 0o660);
  fs.fchmodSync(fd, 0o660);
  try {
    fs.writeSync(fd, text);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  fs.renameSync(temp, path);
}
