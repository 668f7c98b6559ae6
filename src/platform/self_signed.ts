/**
 * The forward daemon's default HTTPS identity: Aspera's documented forward
 * example turns on HTTPS without naming a certificate, as a vendor that
 * ships a default one would. On first start a self-signed certificate and
 * key are generated with openssl into `<state_directory>/forward/` (root
 * only) and reused afterwards; configured `<cert_file>`/`<key_file>` always
 * win.
 * @module
 */

import { UserError } from "../errors.ts";
import { installHint } from "../process/packages.ts";
import type { CommandRunner } from "../process/runner.ts";

/** A certificate and key, PEM, with where they live and the certificate's fingerprint. */
export interface TlsIdentity {
  readonly cert: string;
  readonly key: string;
  readonly certPath: string;
  /** SHA-256 of the DER certificate, `AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints. */
  readonly fingerprint: string;
  /** True when this start made it. */
  readonly created: boolean;
}

/** The generated identity cannot be made or read. */
export class SelfSignedError extends UserError {}

/** Where the default identity lives under a state directory. */
export function selfSignedPaths(
  stateDirectory: string,
): { dir: string; cert: string; key: string } {
  const dir = `${stateDirectory}/forward`;
  return { dir, cert: `${dir}/https-selfsigned.crt`, key: `${dir}/https-selfsigned.key` };
}

/** Reuses the default identity, or makes it (P-256, ten years, CN "xferproxy forward proxy"). */
export async function ensureSelfSigned(
  stateDirectory: string,
  runner: CommandRunner,
): Promise<TlsIdentity> {
  const paths = selfSignedPaths(stateDirectory);
  const existing = await readPair(paths.cert, paths.key);
  if (existing) return { ...existing, certPath: paths.cert, created: false };
  await Deno.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(paths.dir, 0o700);
  const tmpKey = `${paths.key}.${Deno.pid}.tmp`;
  const tmpCert = `${paths.cert}.${Deno.pid}.tmp`;
  try {
    const made = await runner.run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "3650",
      "-subj",
      "/CN=xferproxy forward proxy",
      "-keyout",
      tmpKey,
      "-out",
      tmpCert,
    ]);
    if (made.code !== 0) {
      throw new SelfSignedError(
        `Cannot generate a self-signed certificate: openssl said ${
          JSON.stringify(made.stderr.trim().split("\n").at(-1) ?? "")
        }; set <cert_file> and <key_file> in <proxy>`,
      );
    }
    await Deno.chmod(tmpKey, 0o600);
    await Deno.chmod(tmpCert, 0o644);
    await Deno.rename(tmpKey, paths.key);
    await Deno.rename(tmpCert, paths.cert);
  } catch (error) {
    // Temporary files in a root-only directory; the error below is what matters.
    await Deno.remove(tmpKey).catch(() => {});
    await Deno.remove(tmpCert).catch(() => {});
    if (error instanceof SelfSignedError) throw error;
    if ((error as Error).name === "CommandNotFoundError") {
      throw new SelfSignedError(
        `Cannot generate a self-signed certificate: openssl is not installed; ${
          installHint("openssl")
        }, or set <cert_file> and <key_file> in <proxy>`,
      );
    }
    throw error;
  }
  const pair = await readPair(paths.cert, paths.key);
  if (!pair) throw new SelfSignedError(`Cannot read the certificate just made in ${paths.dir}`);
  return { ...pair, certPath: paths.cert, created: true };
}

async function readPair(
  certPath: string,
  keyPath: string,
): Promise<{ cert: string; key: string; fingerprint: string } | undefined> {
  try {
    const [cert, key] = [await Deno.readTextFile(certPath), await Deno.readTextFile(keyPath)];
    return { cert, key, fingerprint: await certificateFingerprint(cert) };
  } catch {
    return undefined;
  }
}

/** SHA-256 fingerprint of the first PEM certificate in `pem`. */
export async function certificateFingerprint(pem: string): Promise<string> {
  const body = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem)?.[1];
  if (!body) throw new SelfSignedError("No PEM certificate found");
  const der = Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return [...digest].map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join(":");
}
