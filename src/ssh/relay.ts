/**
 * The byte pump between the client's session (our stdin, stdout, stderr, as
 * sshd gave them) and the upstream channel. stdout and stderr stay separate,
 * EOF travels both ways, and each direction waits for the other side to
 * drain, so memory stays flat however large the transfer.
 * @module
 */

import type { UpstreamChannel } from "./bridge.ts";

/** The client side of the session. */
export interface ClientStdio {
  readonly stdin: ReadableStream<Uint8Array>;
  readonly stdout: WritableStream<Uint8Array>;
  readonly stderr: WritableStream<Uint8Array>;
}

/** How the relay ended. */
export interface RelayResult {
  /** The upstream command's exit status, when it reported one. */
  readonly exitCode?: number;
  /** The signal that ended the upstream command (e.g. "TERM"), when one did. */
  readonly exitSignal?: string;
  /** Bytes from the client to the internal server. */
  readonly bytesUp: number;
  /** Bytes from the internal server to the client (stdout and stderr). */
  readonly bytesDown: number;
  /** "eof": the channel closed normally; "client-gone": writing to the client failed; "aborted": a signal ended it. */
  readonly ended: "eof" | "client-gone" | "aborted";
}

/** Bytes queued for the client at which the upstream channel is paused, and resumed. */
const QUEUE_HIGH = 1024 * 1024;
const QUEUE_LOW = QUEUE_HIGH / 4;

/** Relays until the upstream channel closes, the client goes away, or `abort` fires. */
export function relay(
  upstream: UpstreamChannel,
  client: ClientStdio,
  abort: AbortSignal,
): Promise<RelayResult> {
  const channel = upstream.stream;
  return new Promise((resolve) => {
    let bytesUp = 0;
    let bytesDown = 0;
    let ended: RelayResult["ended"] = "eof";
    let finished = false;
    const stdinReader = client.stdin.getReader();
    // Writes to one stream complete in order, so the last one stands for all of them.
    const lastWrite = {
      stdout: Promise.resolve() as Promise<unknown>,
      stderr: Promise.resolve() as Promise<unknown>,
    };

    const finish = async () => {
      if (finished) return;
      finished = true;
      abort.removeEventListener("abort", onAbort);
      stdinReader.cancel().catch(() => {});
      await Promise.allSettled([lastWrite.stdout, lastWrite.stderr]);
      const { code, signal } = upstream.exit;
      resolve({
        ...(code !== undefined ? { exitCode: code } : {}),
        ...(signal !== undefined ? { exitSignal: signal } : {}),
        bytesUp,
        bytesDown,
        ended,
      });
    };
    const stop = (why: RelayResult["ended"]) => {
      if (ended === "eof") ended = why;
      channel.close();
      void finish();
    };
    const onAbort = () => stop("aborted");
    abort.addEventListener("abort", onAbort);

    // Upstream → client, one writer per stream; pause the channel while the client is slow.
    const forward = (
      source: NodeJS.ReadableStream,
      sink: WritableStream<Uint8Array>,
      name: "stdout" | "stderr",
    ) => {
      const writer = sink.getWriter();
      const drained = new Promise<void>((resolve) => {
        source.once("end", resolve);
        source.once("error", resolve);
      });
      // Backpressure with a window: pause the channel when a MiB is queued for the client and
      // resume below a quarter of that, so memory stays bounded without stopping the channel
      // after every chunk (the stream's own high-water mark is a single chunk).
      let queued = 0;
      let paused = false;
      source.on("data", (chunk: Uint8Array) => {
        const size = chunk.length;
        bytesDown += size;
        queued += size;
        lastWrite[name] = writer.write(new Uint8Array(chunk)).then(() => {
          queued -= size;
          if (paused && queued <= QUEUE_LOW) {
            paused = false;
            source.resume();
          }
        }, () => stop("client-gone"));
        if (!paused && queued >= QUEUE_HIGH) {
          paused = true;
          source.pause();
        }
      });
      return drained;
    };
    const outputsDrained = Promise.all([
      forward(channel, client.stdout, "stdout"),
      forward(channel.stderr, client.stderr, "stderr"),
    ]);
    // ssh2 reports "close" as soon as the server closes the channel, possibly while
    // output is still buffered in a paused stream: deliver all of it first.
    channel.on("close", () => void outputsDrained.then(finish));
    // Killed by a signal: end now, as ssh does, rather than wait for whatever the command left
    // running to close the channel (sshd keeps it open while a child holds its output).
    const onKilled = () => {
      if (upstream.exit.signal && !finished) channel.close();
    };
    channel.on("exit", () => queueMicrotask(onKilled));
    onKilled();

    // Client → upstream; a false write() means the channel window is full: wait for drain.
    (async () => {
      try {
        while (!finished) {
          const { value, done } = await stdinReader.read();
          if (done) break;
          bytesUp += value.length;
          if (!channel.write(value)) await new Promise((r) => channel.once("drain", r));
        }
        if (!finished) channel.end(); // EOF upstream; the command's output may still follow
      } catch {
        if (!finished) channel.end();
      }
    })();
  });
}
