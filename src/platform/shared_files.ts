/**
 * Opening files in directories other users can write (the log directory and
 * the balancer state, shared by every proxy user through a group): a file
 * there may be a symlink a group member planted, pointing at something the
 * opener may write and the planter may not. So a file must be a regular file
 * before (lstat) and after (fstat, same inode) it is opened, is created only
 * with O_EXCL (which never follows a symlink), and gets its mode on the open
 * descriptor (fchmod), never by path. (O_NOFOLLOW would be simpler, but
 * Deno drops it whenever permissions are restricted: measured.) A symlink
 * swapped in between the two checks is at worst opened without creating,
 * truncating or writing anything.
 * @module
 */

import fs from "node:fs";

const { O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_WRONLY } = fs.constants;

/** A path that is a symlink, a FIFO or anything but a regular file. */
export class NotRegularFileError extends Error {
  constructor(path: string) {
    super(`"${path}" is a symbolic link or not a regular file; refusing to use it`);
    this.name = "NotRegularFileError";
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}

function openRegular(path: string, flags: number, mode: number): number {
  let before: fs.Stats | undefined;
  try {
    before = fs.lstatSync(path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
  if (before && !before.isFile()) throw new NotRegularFileError(path);
  let fd: number;
  try {
    fd = before || !(flags & O_CREAT)
      ? fs.openSync(path, flags & ~O_CREAT)
      : fs.openSync(path, flags | O_EXCL, mode);
  } catch (error) {
    // Something appeared since the lstat: a planted symlink, or another session's file.
    if (errorCode(error) === "EEXIST") return openRegular(path, flags & ~O_CREAT, mode);
    throw error;
  }
  const after = fs.fstatSync(fd);
  if (!after.isFile() || (before && (after.ino !== before.ino || after.dev !== before.dev))) {
    fs.closeSync(fd);
    throw new NotRegularFileError(path);
  }
  // Every member of the directory's group must be able to use it; only the owner may change the
  // mode, and when someone else created it, they set it.
  if ((after.mode & 0o777) !== mode) {
    try {
      fs.fchmodSync(fd, mode);
    } catch { /* EPERM: someone else's file */ }
  }
  return fd;
}

/** An append-only handle on a shared file (created mode 0660), for one line per write. */
export interface AppendHandle {
  write(text: string): void;
  close(): void;
}

/** Opens `path` for appending, creating it 0660; throws NotRegularFileError on a symlink. */
export function openSharedAppend(path: string): AppendHandle {
  const fd = openRegular(path, O_WRONLY | O_APPEND | O_CREAT, 0o660);
  return {
    write: (text) => void fs.writeSync(fd, text),
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

/**
 * Creates `path` as a regular 0660 file if it is missing, refusing a symlink,
 * and returns its inode: a lock file, which is then opened read-only (flock
 * needs no write access) and compared against this inode.
 */
export function ensureSharedFile(path: string): number {
  const fd = openRegular(path, O_RDONLY | O_CREAT, 0o660);
  try {
    return fs.fstatSync(fd).ino;
  } finally {
    fs.closeSync(fd);
  }
}
