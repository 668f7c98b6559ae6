/**
 * Learning of a session owner's exit from the kernel: a pidfd polls
 * readable the moment its process exits, so the DNAT service removes a
 * session's rules within milliseconds instead of at its next poll. The
 * exit status is read from /proc while the process is a zombie, or from
 * the pidfd itself after it is reaped (Linux 6.15+); otherwise unknown.
 * @module
 */

import type { ExitStatus, ExitWatch } from "../dnat/service_sessions.ts";
import { processFacts } from "../dnat/ancestry.ts";
import { parseStat, type ProcReader, readProcText } from "../dnat/procfs.ts";
import { sameStart } from "../dnat/types.ts";
import type { FdEvents } from "./fd_events.ts";
import { libc, LINUX } from "./libc.ts";

/** pidfd_open(2); undefined when the process is gone (or the kernel is older than 5.3). */
export function openPidfd(pid: number): number | undefined {
  const fd = Number(libc().syscall(BigInt(LINUX.SYS_PIDFD_OPEN), BigInt(pid), 0n, 0n));
  return fd >= 0 ? fd : undefined;
}

/** Decodes a wait status. */
export function exitStatusOf(status: number): ExitStatus {
  const signal = status & 0x7f;
  return signal === 0 ? { code: (status >> 8) & 0xff } : { signal };
}

/** The exit status a reaped process left on its pidfd (PIDFD_GET_INFO with PIDFD_INFO_EXIT). */
function statusFromPidfd(pidfd: number): ExitStatus {
  const info = new Uint8Array(64);
  const view = new DataView(info.buffer);
  view.setBigUint64(0, LINUX.PIDFD_INFO_EXIT, true);
  if (libc().ioctl(pidfd, LINUX.PIDFD_GET_INFO, info) !== 0) return {};
  const mask = view.getBigUint64(0, true);
  return (mask & LINUX.PIDFD_INFO_EXIT) !== 0n ? exitStatusOf(view.getInt32(60, true)) : {};
}

/** Exit watches over one fd loop. */
export function pidfdExitWatch(events: FdEvents, proc: ProcReader): ExitWatch {
  return {
    async watch(owner, pidfd, onExit) {
      const pid = owner.pid;
      const fd = pidfd ?? openPidfd(pid);
      if (fd === undefined) return undefined;
      // The pidfd is of whatever process has this pid now: it must be the owner, still running.
      const facts = await processFacts(proc, pid);
      if (!facts || facts.stat.state === "Z" || !sameStart(owner, facts.start)) {
        libc().close(fd);
        return undefined;
      }
      let done = false;
      const remove = events.watch(fd, () => {
        if (done) return;
        done = true;
        remove();
        // While the process is a zombie its parent has not reaped it: /proc still has the status.
        readProcText(proc, `/proc/${pid}/stat`).then((text) => {
          const stat = text === undefined ? undefined : parseStat(text);
          const status = stat?.state === "Z" && stat.exitCode !== undefined
            ? exitStatusOf(stat.exitCode)
            : statusFromPidfd(fd);
          libc().close(fd);
          onExit(status);
        }, () => {
          libc().close(fd);
          onExit({});
        });
      });
      return {
        cancel() {
          if (done) return;
          done = true;
          remove();
          libc().close(fd);
        },
      };
    },
    release: (pidfd) => void libc().close(pidfd),
  };
}
