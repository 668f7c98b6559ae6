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
  readonly stdout: SyncSink;
  readonly stderr: SyncSink;
}

/** A blocking writer (Deno.stdout, Deno.stderr): returns how many bytes it took. */
export interface SyncSink {
  writeSync(bytes: Uint8Array): number;
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

    const finish = () => {
      if (finished) return;
      finished = true;
      abort.removeEventListener("abort", onAbort);
      stdinReader.cancel().catch(() => {});
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
      finish();
    };
    const onAbort = () => stop("aborted");
    abort.addEventListener("abort", onAbort);

    // Upstream → client with blocking writes. Deno's asynchronous stdout writes cost about
    // half a millisecond each, which capped downloads near 60 MB/s; writeSync on sshd's pipe
    // runs at several hundred. A full pipe blocks the process: that is the backpressure (ssh2
    // stops reading, its window closes upstream), and memory stays at one packet.
    const forward = (source: NodeJS.ReadableStream, sink: SyncSink) => {
      const sourceEnded = new Promise<void>((resolve) => {
        source.once("end", resolve);
        source.once("error", resolve);
      });
      source.on("data", (chunk: Uint8Array) => {
        if (finished) return;
        bytesDown += chunk.length;
        try {
          let rest = chunk;
          while (rest.length > 0) rest = rest.subarray(sink.writeSync(rest));
        } catch {
          stop("client-gone");
        }
      });
      return sourceEnded;
    };
    const outputsDrained = Promise.all([
      forward(channel, client.stdout),
      forward(channel.stderr, client.stderr),
    ]);
    // ssh2 reports "close" as soon as the server closes the channel, possibly while
    // output is still buffered in a paused stream: deliver all of it first.
    channel.on("close", () => void outputsDrained.then(finish));

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
