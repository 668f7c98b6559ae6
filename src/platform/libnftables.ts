/**
 * nftables commands through libnftables in this process (Deno FFI), as
 * firewalld does: one netlink socket for the life of the process. Running
 * `nft` per change costs ~6 ms to add and ~20 ms to delete, most of it the
 * kernel flushing deleted objects when nft's socket closes (an RCU grace
 * period); in-process both take well under a millisecond. FFI is granted to
 * dnat mode for these library paths only.
 * @module
 */

import { NetfilterError } from "../dnat/errors.ts";
import { nftCommandRunner } from "../dnat/nftables/backend.ts";
import type { NftRunner } from "../dnat/types.ts";
import type { CommandRunner } from "../process/runner.ts";
import { LIBNFTABLES_PATHS } from "../process/libraries.ts";

const SYMBOLS = {
  nft_ctx_new: { parameters: ["u32"], result: "pointer" },
  nft_ctx_output_set_flags: { parameters: ["pointer", "u32"], result: "void" },
  nft_ctx_buffer_output: { parameters: ["pointer"], result: "i32" },
  nft_ctx_buffer_error: { parameters: ["pointer"], result: "i32" },
  nft_ctx_get_output_buffer: { parameters: ["pointer"], result: "pointer" },
  nft_ctx_get_error_buffer: { parameters: ["pointer"], result: "pointer" },
  // Off the main thread: a large listing or a kernel commit must not stall the service's loop.
  nft_run_cmd_from_buffer: { parameters: ["pointer", "buffer"], result: "i32", nonblocking: true },
  // dlsym on the library's handle also finds its dependencies' symbols: these are libc's,
  // for reading the C strings libnftables returns (FFI scoped to one library has no pointer view).
  strlen: { parameters: ["pointer"], result: "usize" },
  memcpy: { parameters: ["buffer", "pointer", "usize"], result: "pointer" },
} as const;

const NFT_CTX_DEFAULT = 0;
const NFT_CTX_OUTPUT_JSON = 1 << 4;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** The first of LIBNFTABLES_PATHS that exists, or undefined. */
export function findLibnftables(): string | undefined {
  return LIBNFTABLES_PATHS.find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}

function cString(lib: Lib, pointer: Deno.PointerValue): string {
  if (pointer === null) return "";
  const length = Number(lib.symbols.strlen(pointer));
  const bytes = new Uint8Array(length);
  if (length) lib.symbols.memcpy(bytes, pointer, BigInt(length));
  return new TextDecoder().decode(bytes);
}

/**
 * Opens libnftables at `path`. Commands run one at a time, in order; each
 * `run` is one transaction, as `nft -f` would make it.
 */
export function libnftablesRunner(path: string): NftRunner {
  const lib: Lib = Deno.dlopen(path, SYMBOLS);
  const contexts = new Map<boolean, Deno.PointerValue>();
  const context = (json: boolean) => {
    let ctx = contexts.get(json);
    if (ctx === undefined) {
      ctx = lib.symbols.nft_ctx_new(NFT_CTX_DEFAULT);
      if (ctx === null) throw new NetfilterError("libnftables could not create a context");
      if (json) lib.symbols.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
      lib.symbols.nft_ctx_buffer_output(ctx);
      lib.symbols.nft_ctx_buffer_error(ctx);
      contexts.set(json, ctx);
    }
    return ctx;
  };
  let queue: Promise<unknown> = Promise.resolve();
  const runNow = async (commands: string, json: boolean): Promise<string> => {
    const ctx = context(json);
    const code = await lib.symbols.nft_run_cmd_from_buffer(
      ctx,
      new TextEncoder().encode(commands + "\0"),
    );
    const output = cString(lib, lib.symbols.nft_ctx_get_output_buffer(ctx));
    const error = cString(lib, lib.symbols.nft_ctx_get_error_buffer(ctx));
    if (code !== 0) {
      throw new NetfilterError(`nftables refused the change: ${error.trim() || `code ${code}`}`);
    }
    return output;
  };
  return {
    via: `libnftables ${path}`,
    run(commands, options = {}) {
      const result = queue.then(() => runNow(commands, options.json === true));
      // The queue goes on after a failure; the caller sees it through `result`.
      queue = result.catch(() => {});
      return result;
    },
  };
}

/**
 * libnftables where it is at a known path and loads; otherwise the nft
 * command (slower per change, same results).
 */
export function openNft(runner: CommandRunner): NftRunner {
  const path = findLibnftables();
  if (path) {
    try {
      return libnftablesRunner(path);
    } catch {
      // Not loadable (another ABI, or FFI not granted): the command does the same.
    }
  }
  return nftCommandRunner(runner);
}
