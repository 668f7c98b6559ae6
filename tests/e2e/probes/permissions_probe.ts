// deno-lint-ignore-file no-console
/**
 * Run with the binary's permission set (-P=xferproxy): revokes what the
 * command given as arguments does not need, exactly as main.ts does, then
 * tries each kind of access and prints one JSON line of what was allowed.
 */
import { parseCommandLine } from "../../../src/cli/parse.ts";
import { MODES } from "../../../main.ts";
import { revokeExcept } from "../../../src/platform/permissions.ts";
import { LIBC_PATHS } from "../../../src/process/libraries.ts";
import { findLibnftables } from "../../../src/platform/libnftables.ts";
import { forwardingEnabled } from "../../../src/platform/dnat_host.ts";
import { libcProcReader } from "../../../src/platform/proc_readers.ts";

const libc = LIBC_PATHS.find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}) as string;
const libnftables = findLibnftables() as string;

async function attempt(action: () => Promise<unknown> | unknown): Promise<string> {
  try {
    await action();
    return "allowed";
  } catch (error) {
    return error instanceof Deno.errors.NotCapable
      ? "denied"
      : `allowed (${(error as Error).name})`;
  }
}

const before = await attempt(() =>
  Deno.permissions.query({ name: "net" }).then((s) => {
    if (s.state !== "granted") throw new Deno.errors.NotCapable("net not in the set");
  })
);
revokeExcept(parseCommandLine(MODES, Deno.args).needs);
const result = {
  netGrantedBefore: before,
  connect: await attempt(async () =>
    (await Deno.connect({ hostname: "127.0.0.1", port: 9 })).close()
  ),
  listen: await attempt(() => Deno.listen({ hostname: "127.0.0.1", port: 0 }).close()),
  run: await attempt(() => new Deno.Command("iptables", { args: ["--version"] }).output()),
  runSudo: await attempt(() => new Deno.Command("sudo", { args: ["-n", "true"] }).output()),
  write: await attempt(() => Deno.writeTextFile(Deno.makeTempFileSync(), "x")),
  read: await attempt(() => Deno.readTextFile("/etc/hostname")),
  env: await attempt(() => Deno.env.get("HOME")),
  ffiLibc: await attempt(() =>
    Deno.dlopen(libc, { getpid: { parameters: [], result: "i32" } }).close()
  ),
  ffiNftables: await attempt(() =>
    Deno.dlopen(libnftables, { nft_ctx_new: { parameters: ["u32"], result: "pointer" } }).close()
  ),
  // The grant names libc and libnftables only: any other library stays out of reach.
  ffiOther: await attempt(() =>
    Deno.dlopen(libc.replace("libc.so.6", "libm.so.6"), {
      cos: { parameters: ["f64"], result: "f64" },
    })
      .close()
  ),
  // What the DNAT service asks at every install: ip_forward through libc, no sysctl process
  // (Deno alone may open /proc/sys only with every permission).
  forwardingRead: await forwardingEnabled(libcProcReader(), {
    run: () => Promise.reject(new Error("ran sysctl")),
  }, 4).then(() => "allowed", () => "denied"),
};
console.log(JSON.stringify(result));
