import { assertEquals } from "../_assert.ts";
import { epollEvents } from "../../src/platform/fd_events.ts";
import { listenUnix, type PeerConnection } from "../../src/platform/unix_server.ts";

const MAX_LINE = 128 * 1024;

/** A server on a fresh socket whose connections the test takes from `accepted`. */
async function server(
  fn: (path: string, accepted: () => Promise<PeerConnection>) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "xferproxy-unix-" });
  const path = `${dir}/s.sock`;
  const events = epollEvents();
  const queue: PeerConnection[] = [];
  let arrived = () => {};
  const unix = listenUnix(path, events, MAX_LINE, (c) => {
    queue.push(c);
    arrived();
  });
  const accepted = async () => {
    for (let i = 0; i < 100 && queue.length === 0; i++) {
      await new Promise<void>((resolve) => {
        arrived = resolve;
        setTimeout(resolve, 50);
      });
    }
    const c = queue.shift();
    if (!c) throw new Error("no connection within 5 s");
    return c;
  };
  try {
    await fn(path, accepted);
  } finally {
    for (const c of queue) c.close();
    unix.close();
    await events.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `chunk` over and over for `ms`; the bytes the other side took meanwhile. */
async function flood(conn: Deno.UnixConn, chunk: Uint8Array, ms: number): Promise<number> {
  let written = 0;
  const until = Date.now() + ms;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const out = new Promise<"out">((resolve) => timer = setTimeout(() => resolve("out"), ms));
  try {
    while (Date.now() < until) {
      const n = await Promise.race([conn.write(chunk), out]);
      if (n === "out") break;
      written += n;
    }
  } finally {
    clearTimeout(timer);
  }
  return written;
}

Deno.test({
  name:
    "a peer that writes lines the service does not read yet fills its socket, not the service's memory",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await server(async (path, accepted) => {
      const conn = await Deno.connect({ transport: "unix", path });
      try {
        const connection = await accepted();
        await conn.write(new TextEncoder().encode("first\n"));
        assertEquals(await connection.nextLine(5000), "first");
        // The service is busy elsewhere (a decision probing its servers): it reads nothing.
        const lines = new TextEncoder().encode("x\n".repeat(32 * 1024));
        const written = await flood(conn, lines, 2000);
        // What the kernel's socket buffers hold and one read's worth, not the 2 s of writes.
        assertEquals(written < 4 * 1024 * 1024, true, `the service took ${written} bytes unread`);
        // What it took is still delivered, in order, and reading goes on as the lines are taken.
        assertEquals(await connection.nextLine(5000), "x");
        let taken = 1;
        while (taken * 2 < written && (await connection.nextLine(2000)) === "x") taken++;
        assertEquals(taken * 2, written, "every line written was delivered");
        connection.close();
      } finally {
        conn.close();
      }
    });
  },
});

Deno.test({
  name: "lines that came in one read are delivered one by one, then the peer's end",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await server(async (path, accepted) => {
      const conn = await Deno.connect({ transport: "unix", path });
      const connection = await accepted();
      try {
        await conn.write(new TextEncoder().encode("a\nb\nc"));
        await conn.write(new TextEncoder().encode("\nd\n"));
        conn.close();
        const got = [];
        for (let i = 0; i < 5; i++) got.push(await connection.nextLine(2000));
        assertEquals(got, ["a", "b", "c", "d", undefined]);
      } finally {
        connection.close();
      }
    });
  },
});
