/**
 * Gives the DNAT service's memory back to the kernel where it holds more than it uses: the
 * runtime's code and read-only data (madvise MADV_PAGEOUT on the executable's read-only and
 * code mappings: V8 and Deno touch most of them only to start, and left mapped they were a third
 * of the service's memory), and the free memory of the C allocator (malloc_trim, and large buffers
 * kept out of its heap). MADV_PAGEOUT is a hint that never discards data: pages the service still
 * uses fault back in, from the page cache or, for the few the kernel dropped, from disk. Linux
 * 5.4+; on an older kernel it does nothing.
 * @module
 */

import { executableCodeRanges } from "../process/code_pages.ts";
import { libc, readLink } from "./libc.ts";
import { libcProcReader } from "./proc_readers.ts";

const MADV_PAGEOUT = 21n;
/** madvise(2)'s number: the generic table on aarch64, its own on x86_64. */
const SYS_MADVISE = Deno.build.arch === "x86_64" ? 28n : 233n;

/** mallopt's M_MMAP_THRESHOLD, and glibc's default for it. */
const M_MMAP_THRESHOLD = -3;
const MMAP_THRESHOLD = 128 * 1024;

/**
 * Keeps buffers of 128 KiB and more out of the C allocator's heap for good. By default glibc
 * raises that bound to the largest buffer freed so far (up to 32 MiB), and the heap then holds
 * on to the space of every large command output the service read (an iptables-save of 2000
 * rules): measured with 1000 sessions, its heap 19 → 13 MiB.
 */
export function boundAllocator(): void {
  libc().mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
}

/** This process's executable, as the kernel names it in /proc/self/maps. */
function ownExecutable(): string | undefined {
  return readLink("/proc/self/exe");
}

/**
 * Pages the executable's read-only and code mappings out and trims the allocator.
 * @returns the bytes of code advised (0 when nothing could be found or the kernel refused)
 */
export async function releaseMemory(): Promise<number> {
  libc().malloc_trim(0n);
  const executable = ownExecutable();
  if (!executable) return 0;
  const maps = (await libcProcReader().readTexts(["/proc/self/maps"])).get("/proc/self/maps");
  if (!maps) return 0;
  let advised = 0;
  for (const range of executableCodeRanges(maps, executable)) {
    if (Number(libc().syscall(SYS_MADVISE, range.start, range.length, MADV_PAGEOUT)) === 0) {
      advised += Number(range.length);
    }
  }
  return advised;
}
