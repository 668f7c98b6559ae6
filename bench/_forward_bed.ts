/**
 * The forward testbed as the forward benchmarks use it: the daemon on a
 * chosen DNAT backend and one API user.
 * @module
 */
import {
  BINARY,
  createForwardBed,
  FIP,
  type ForwardBed,
  forwardConfig,
  must,
} from "../tests/testbed/mod.ts";

/** The backends the forward daemon runs on (`<dnat_backend>`). */
export const FORWARD_BACKENDS = ["iptables", "nftables"] as const;

/** A `<dnat_backend>` the forward daemon can run on. */
export type ForwardBackend = typeof FORWARD_BACKENDS[number];

/** The API user every forward benchmark client authenticates as. */
export const API_USER = { name: "bench", password: "pw" } as const;

/**
 * A forward testbed whose daemon runs on `backend` with the bed's config as `tune` changes it,
 * and API_USER allowed to reach the outside server.
 */
export async function benchForwardBed(
  backend: ForwardBackend,
  tune: (config: string) => string = (config) => config,
): Promise<ForwardBed> {
  const bed = await createForwardBed();
  try {
    const config = forwardConfig(bed.dir, "", `<dnat_backend>${backend}</dnat_backend>`);
    await Deno.writeTextFile(bed.configPath, config);
    await must([
      BINARY,
      "forward",
      "user",
      "add",
      API_USER.name,
      "--password-stdin",
      "--allow",
      // The outside server sits on a network the proxy is attached to: allowed explicitly, as policy requires.
      `${FIP.outside}/32`,
      "--config",
      bed.configPath,
    ], { stdin: API_USER.password });
    await bed.startDaemon(tune(config));
    return bed;
  } catch (error) {
    await bed.close();
    throw error;
  }
}
