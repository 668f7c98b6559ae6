/**
 * Whether a Unix socket can be trusted as the DNAT service's: only root
 * could have put it there. A session talks to it only then; otherwise it
 * goes on as if the service were down.
 * @module
 */

/**
 * Only root could have put a socket here: a directory of root's that nobody else may write, and a
 * socket of root's in it. (The socket is world-writable: the directory's group gates who reaches it.)
 */
export function rootsSocket(path: string): boolean {
  try {
    const dir = Deno.lstatSync(path.replace(/\/[^/]*$/, "") || "/");
    const socket = Deno.lstatSync(path);
    return dir.isDirectory && dir.uid === 0 && ((dir.mode ?? 0) & 0o022) === 0 &&
      socket.isSocket === true && socket.uid === 0;
  } catch {
    return false;
  }
}
