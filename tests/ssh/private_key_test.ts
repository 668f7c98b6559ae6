import { assertEquals } from "../_assert.ts";
import { classifyPrivateKey, keyModeProblem } from "../../src/ssh/private_key.ts";

const FIXTURES = new URL("../fixtures/keys/", import.meta.url);
const key = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

Deno.test("classifyPrivateKey() accepts unencrypted OpenSSH, PEM and PKCS#8 keys", () => {
  for (const name of ["openssh_plain", "pem_plain", "pkcs8_plain"]) {
    assertEquals(classifyPrivateKey(key(name), `/k/${name}`), { ok: true }, name);
  }
});

Deno.test("classifyPrivateKey() refuses keys with a passphrase, in every format", () => {
  for (const name of ["openssh_encrypted", "pem_encrypted", "pkcs8_encrypted"]) {
    assertEquals(classifyPrivateKey(key(name), "/k/x"), {
      ok: false,
      message: 'Keyfile "/k/x" is encrypted: use a key without a passphrase',
    }, name);
  }
});

Deno.test("classifyPrivateKey() refuses DSA keys (old Faspex set-ups), in every format", () => {
  for (const name of ["openssh_dsa", "pem_dsa", "pkcs8_dsa"]) {
    assertEquals(classifyPrivateKey(key(name), "/k/aspera_id_dsa"), {
      ok: false,
      message:
        'Keyfile "/k/aspera_id_dsa" is a DSA key, which OpenSSH refuses since 7.0: make an ed25519 key (ssh-keygen -t ed25519) and authorize it on the internal server',
    }, name);
  }
});

Deno.test("classifyPrivateKey() says what is wrong with things that are not private keys", () => {
  assertEquals(classifyPrivateKey("ssh-ed25519 AAAAC3Nz fixture\n", "/k/pub"), {
    ok: false,
    message: 'Keyfile "/k/pub" holds no private key',
  });
  const corrupt =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n";
  assertEquals(classifyPrivateKey(corrupt, "/k/c"), {
    ok: false,
    message: 'Keyfile "/k/c" is not a usable private key: corrupt OpenSSH key',
  });
  const putty = "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n";
  assertEquals(classifyPrivateKey(putty, "/k/p").ok, false);
});

Deno.test("keyModeProblem() flags only keys ssh itself would refuse", () => {
  // Owned by the running user and readable by others: ssh says "UNPROTECTED PRIVATE KEY FILE".
  assertEquals(
    keyModeProblem({ uid: 1000, mode: 0o100644 }, 1000, "/home/bob/.ssh/id"),
    'Keyfile "/home/bob/.ssh/id" is accessible by others (mode 0644) and ssh refuses it: chmod 600 /home/bob/.ssh/id',
  );
  assertEquals(keyModeProblem({ uid: 1000, mode: 0o100600 }, 1000, "/k"), undefined);
  // A root-owned squash key shared with the proxy group through mode 640.
  assertEquals(keyModeProblem({ uid: 0, mode: 0o100640 }, 1000, "/k"), undefined);
});
