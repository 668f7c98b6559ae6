/**
 * Reading /proc two ways: through libc in the DNAT service (many reads a
 * second, no process started), and through head(1) and find(1) in the
 * one-shot privileged calls, which hold no FFI (one program run per batch).
 * Deno itself opens /proc only for a fully privileged process.
 * @module
 */

import { headArgv, type ProcReader, splitHeadOutput } from "../dnat/procfs.ts";
import type { CommandRunner } from "../process/runner.ts";
import { cPath, errno, libc, LINUX, readLink } from "./libc.ts";

const CHUNK = 65536;

/** One buffer for every read: the service reads a thousand small files each liveness round. */
const chunk = new Uint8Array(CHUNK);

function readFd(fd: number): Uint8Array | undefined {
  const c = libc();
  const parts: Uint8Array[] = [];
  for (;;) {
    const n = Number(c.read(fd, chunk, BigInt(CHUNK)));
    if (n < 0) {
      if (errno() === LINUX.EINTR) continue;
      return undefined;
    }
    if (n === 0) break;
    parts.push(chunk.slice(0, n));
  }
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** One /proc file through libc; undefined when it cannot be opened or read. */
export function readProcFile(path: string): string | undefined {
  const c = libc();
  const fd = c.open(cPath(path), LINUX.O_RDONLY | LINUX.O_CLOEXEC | LINUX.O_NOFOLLOW, 0);
  if (fd < 0) return undefined;
  try {
    const bytes = readFd(fd);
    return bytes && new TextDecoder().decode(bytes);
  } finally {
    c.close(fd);
  }
}

/** The names in a directory (getdents64), without "." and "..". */
function listNames(dir: string): string[] {
  const c = libc();
  const fd = c.open(cPath(dir), LINUX.O_RDONLY | LINUX.O_DIRECTORY | LINUX.O_CLOEXEC, 0);
  if (fd < 0) return [];
  const names: string[] = [];
  const buffer = chunk;
  const view = new DataView(buffer.buffer);
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const n = Number(c.getdents64(fd, buffer, BigInt(CHUNK)));
      if (n <= 0) break;
      // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
      for (let at = 0; at < n;) {
        const reclen = view.getUint16(at + 16, true);
        const nameStart = at + 19;
        const nameEnd = buffer.indexOf(0, nameStart);
        const name = decoder.decode(buffer.subarray(nameStart, nameEnd));
        if (name !== "." && name !== "..") names.push(name);
        at += reclen;
      }
    }
  } finally {
    c.close(fd);
  }
  return names;
}

/** The symbolic links in a directory (/proc/PID/fd) with their targets, by name. */
export function namedLinkTargets(dir: string): Array<[string, string]> {
  return listNames(dir).flatMap((name) => {
    const target = readLink(`${dir}/${name}`);
    return target === undefined ? [] : [[name, target] as [string, string]];
  });
}

/** /proc through libc: the DNAT service's reader (held_sockets.ts adds its sockets' view). */
export function libcProcReader(): ProcReader {
  return {
    readTexts(paths) {
      const out = new Map<string, string>();
      for (const path of paths) {
        const text = readProcFile(path);
        if (text !== undefined) out.set(path, text);
      }
      return Promise.resolve(out);
    },
    linkTargets(dir) {
      return Promise.resolve(namedLinkTargets(dir).map(([, target]) => target));
    },
  };
}

/** /proc through head(1) and find(1): the one-shot privileged calls' reader. */
export function commandProcReader(runner: CommandRunner): ProcReader {
  return {
    async readTexts(paths) {
      if (paths.length === 0) return new Map();
      // head exits 1 when a file is missing (its process ended) and prints the others.
      const [program, ...args] = headArgv(paths);
      const result = await runner.run(program as string, args);
      return splitHeadOutput(result.stdout);
    },
    async linkTargets(dir) {
      const result = await runner.run("find", [
        dir,
        "-mindepth",
        "1",
        "-maxdepth",
        "1",
        "-type",
        "l",
        "-printf",
        "%l\\n",
      ]);
      return result.code === 0 ? result.stdout.split("\n").filter((l) => l !== "") : [];
    },
  };
}
