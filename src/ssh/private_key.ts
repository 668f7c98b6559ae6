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

/** The cipher of an OpenSSH-format key ("none" when not encrypted) and its key type. */
function opensshHeader(body: string): { cipher: string; keyType?: string } | undefined {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC) return undefined;
  // cipher, kdf name, kdf options (strings), key count (uint32), then the first public key.
  let at = MAGIC.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const string = (limit: number): Uint8Array | undefined => {
    if (at + 4 > bytes.length) return undefined;
    const length = view.getUint32(at);
    if (length > limit || at + 4 + length > bytes.length) return undefined;
    const value = bytes.subarray(at + 4, at + 4 + length);
    at += 4 + length;
    return value;
  };
  const cipher = string(64);
  if (cipher === undefined) return undefined;
  const header = { cipher: new TextDecoder().decode(cipher) };
  if (string(64) === undefined || string(1024) === undefined || at + 4 > bytes.length) {
    return header;
  }
  at += 4;
  const publicKey = string(65536);
  if (!publicKey || publicKey.length < 4) return header;
  const typeLength = new DataView(publicKey.buffer, publicKey.byteOffset).getUint32(0);
  if (typeLength > 64 || 4 + typeLength > publicKey.length) return header;
  return { ...header, keyType: new TextDecoder().decode(publicKey.subarray(4, 4 + typeLength)) };
}

/** The DER of the DSA algorithm identifier (1.2.840.10040.4.1), as a PKCS#8 key carries it. */
const DSA_OID = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];

function holdsDsaOid(body: string): boolean {
  let der: Uint8Array;
  try {
    der = Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    return false;
  }
  for (let i = 0; i + DSA_OID.length <= Math.min(der.length, 64); i++) {
    if (DSA_OID.every((b, k) => der[i + k] === b)) return true;
  }
  return false;
}

/** Classifies a keyfile's text; `path` is for the message. */
export function classifyPrivateKey(text: string, path: string): KeyVerdict {
  const encrypted = {
    ok: false,
    message: `Keyfile "${path}" is encrypted: use a key without a passphrase`,
  } as const;
  const dsa = {
    ok: false,
    message:
      `Keyfile "${path}" is a DSA key, which OpenSSH refuses since 7.0: make an ed25519 key (ssh-keygen -t ed25519) and authorize it on the internal server`,
  } as const;
  const openssh = OPENSSH.exec(text);
  if (openssh) {
    const header = opensshHeader(openssh[1] as string);
    if (header === undefined) {
      return {
        ok: false,
        message: `Keyfile "${path}" is not a usable private key: corrupt OpenSSH key`,
      };
    }
    if (header.cipher !== "none") return encrypted;
    return header.keyType === "ssh-dss" ? dsa : { ok: true };
  }
  const pem = PEM.exec(text);
  if (pem) {
    if (pem[1] === "ENCRYPTED PRIVATE KEY" || /Proc-Type:\s*4,ENCRYPTED/.test(pem[2] as string)) {
      return encrypted;
    }
    if (
      pem[1] === "DSA PRIVATE KEY" || (pem[1] === "PRIVATE KEY" && holdsDsaOid(pem[2] as string))
    ) {
      return dsa;
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
