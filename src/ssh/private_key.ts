/**
 * Whether a keyfile can be used by `ssh` in batch mode: a private key in a
 * format OpenSSH reads, without a passphrase. Checked before the hand-off,
 * because afterwards `ssh` could only fail without telling the client why.
 * Pure: the file's text and mode come in.
 * @module
 */

/** Why a keyfile cannot be used, or that it can. */
export type KeyVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly message: string };

const OPENSSH = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/;
const PEM = /-----BEGIN ((?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY)-----([\s\S]*?)-----END \1-----/;
const MAGIC = "openssh-key-v1\0";

/** The cipher an OpenSSH-format key is encrypted with ("none" when it is not). */
function opensshCipher(body: string): string | undefined {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC || bytes.length < MAGIC.length + 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + MAGIC.length);
  const length = view.getUint32(0);
  if (length > 64 || MAGIC.length + 4 + length > bytes.length) return undefined;
  const start = MAGIC.length + 4;
  return new TextDecoder().decode(bytes.subarray(start, start + length));
}

/** Classifies a keyfile's text; `path` is for the message. */
export function classifyPrivateKey(text: string, path: string): KeyVerdict {
  const encrypted = {
    ok: false,
    message: `Keyfile "${path}" is encrypted: use a key without a passphrase`,
  } as const;
  const openssh = OPENSSH.exec(text);
  if (openssh) {
    const cipher = opensshCipher(openssh[1] as string);
    if (cipher === undefined) {
      return {
        ok: false,
        message: `Keyfile "${path}" is not a usable private key: corrupt OpenSSH key`,
      };
    }
    return cipher === "none" ? { ok: true } : encrypted;
  }
  const pem = PEM.exec(text);
  if (pem) {
    if (pem[1] === "ENCRYPTED PRIVATE KEY" || /Proc-Type:\s*4,ENCRYPTED/.test(pem[2] as string)) {
      return encrypted;
    }
    return { ok: true };
  }
  if (/^PuTTY-User-Key-File-/m.test(text)) {
    return {
      ok: false,
      message:
        `Keyfile "${path}" is not a usable private key: a PuTTY key (convert it with puttygen -O private-openssh)`,
    };
  }
  return { ok: false, message: `Keyfile "${path}" holds no private key` };
}

/**
 * OpenSSH refuses a key owned by the user running it when group or others
 * may read it ("UNPROTECTED PRIVATE KEY FILE"); a root-owned key shared
 * through a group is fine.
 */
export function keyModeProblem(
  info: { uid: number; mode: number },
  runningUid: number,
  path: string,
): string | undefined {
  if (info.uid !== runningUid || (info.mode & 0o077) === 0) return undefined;
  const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
  return `Keyfile "${path}" is accessible by others (mode ${mode}) and ssh refuses it: chmod 600 ${path}`;
}
