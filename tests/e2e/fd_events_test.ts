import { assertEquals } from "../_assert.ts";
import { epollEvents } from "../../src/platform/fd_events.ts";
import { libc, LINUX } from "../../src/platform/libc.ts";

/** Makes `fd` (an eventfd) readable. */
function signal(fd: number): void {
  const one = new Uint8Array(8);
  new DataView(one.buffer).setBigUint64(0, 1n, true);
  libc().write(fd, one, 8n);
}

Deno.test({
  name: "the epoll loop lives through a storm of SIGCHLD: each child's exit may interrupt its wait",
  // The loop's FFI call runs on a worker thread; what the test spawns ends before it does.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const c = libc();
    const fd = c.eventfd(0, LINUX.EFD_CLOEXEC | LINUX.EFD_NONBLOCK);
    const events = epollEvents();
    try {
      let woken = 0;
      let wake: () => void = () => {};
      const stop = events.watch(fd, () => {
        c.read(fd, new Uint8Array(8), 8n);
        woken++;
        wake();
      });
      // Every exit sends SIGCHLD, which lands on whichever thread it likes, the loop's among them
      // (the service runs thousands of conntrack and iptables children).
      for (let round = 0; round < 10; round++) {
        await Promise.all(
          Array.from({ length: 40 }, () => new Deno.Command("true").output()),
        );
      }
      const heard = new Promise<void>((resolve) => wake = resolve);
      signal(fd);
      await Promise.race([heard, new Promise((resolve) => setTimeout(resolve, 5000))]);
      assertEquals(woken, 1, "the loop no longer answers");
      stop();
    } finally {
      await events.close();
      c.close(fd);
    }
  },
});

Deno.test({
  name: "fds ready together are reported together: owners that end together are one change",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const c = libc();
    const fds = Array.from(
      { length: 300 },
      () => c.eventfd(0, LINUX.EFD_CLOEXEC | LINUX.EFD_NONBLOCK),
    );
    const events = epollEvents();
    try {
      // A wake runs every ready fd's callback in one synchronous pass; the microtask queued by
      // its first callback runs only after that pass, so it counts passes.
      let wakes = 0;
      let inWake = false;
      let heard = 0;
      let all: () => void = () => {};
      const done = new Promise<void>((resolve) => all = resolve);
      const stops = fds.map((fd) =>
        events.watch(fd, () => {
          c.read(fd, new Uint8Array(8), 8n);
          if (!inWake) {
            inWake = true;
            wakes++;
            queueMicrotask(() => inWake = false);
          }
          if (++heard === fds.length) all();
        })
      );
      // Every fd ready before the loop looks again.
      for (const fd of fds) signal(fd);
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5000))]);
      assertEquals(heard, fds.length);
      // The wait may return at the first fd, before the others are ready; the next one, made once
      // this thread is free again (every fd ready by then), returns all the rest. At 64 fds a
      // wait it took five more.
      assertEquals(wakes <= 2, true, `${wakes} wakes for ${fds.length} ready fds`);
      for (const stop of stops) stop();
    } finally {
      await events.close();
      for (const fd of fds) c.close(fd);
    }
  },
});
