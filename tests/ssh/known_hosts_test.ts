import { createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import { assertEquals } from "../_assert.ts";
import {
  fingerprint,
  hostKeyAlgorithms,
  knownHostsName,
  parseKnownHosts,
  verifyHostKey,
} from "../../src/ssh/known_hosts.ts";

/** A syntactically valid key blob of a type: the type string, then filler. */
function blob(type: string, fill: number): Uint8Array {
  const name = new TextEncoder().encode(type);
  const out = new Uint8Array(4 + name.length + 32).fill(fill);
  new DataView(out.buffer).setUint32(0, name.length);
  out.set(name, 4);
  return out;
}
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const KEY_A = blob("ssh-ed25519", 1);
const KEY_B = blob("ssh-ed25519", 2);
const KEY_RSA = blob("ssh-rsa", 3);

function hashed(name: string, salt = Buffer.from("0123456789abcdefghij")): string {
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}

Deno.test("parseKnownHosts() reads plain, bracketed, hashed and marked lines, skipping junk", () => {
  const { entries, skipped } = parseKnownHosts([
    "# comment",
    "",
    `198.18.2.2 ssh-ed25519 ${b64(KEY_A)} root@a`,
    `[198.18.2.3]:2222,other ssh-ed25519 ${b64(KEY_B)}`,
    `${hashed("198.18.2.4")} ssh-ed25519 ${b64(KEY_A)}`,
    `@revoked * ssh-ed25519 ${b64(KEY_B)}`,
    `@bogus * ssh-ed25519 ${b64(KEY_B)}`,
    `broken-line`,
    `198.18.2.5 ssh-rsa ${b64(KEY_A)}`,
  ].join("\n"));
  assertEquals(entries.map((e) => [e.line, e.marker ?? "", e.patterns.length, e.keyType]), [
    [3, "", 1, "ssh-ed25519"],
    [4, "", 2, "ssh-ed25519"],
    [5, "", 1, "ssh-ed25519"],
    [6, "revoked", 1, "ssh-ed25519"],
  ]);
  // line 9 claims ssh-rsa but holds an ed25519 blob
  assertEquals(skipped, [7, 8, 9]);
});

Deno.test("verifyHostKey() accepts the pinned key only", async (t) => {
  const { entries } = parseKnownHosts([
    `198.18.2.2 ssh-ed25519 ${b64(KEY_A)}`,
    `[198.18.2.3]:2222 ssh-ed25519 ${b64(KEY_B)}`,
    `${hashed("[198.18.2.4]:2200")} ssh-ed25519 ${b64(KEY_A)}`,
    `198.18.3.*,!198.18.3.9 ssh-ed25519 ${b64(KEY_A)}`,
    `@revoked * ssh-ed25519 ${b64(blob("ssh-ed25519", 9))}`,
  ].join("\n"));
  await t.step(
    "plain, port 22",
    async () => assertEquals(await verifyHostKey(entries, "198.18.2.2", 22, KEY_A), { ok: true }),
  );
  await t.step(
    "bracketed port",
    async () => assertEquals(await verifyHostKey(entries, "198.18.2.3", 2222, KEY_B), { ok: true }),
  );
  await t.step(
    "hashed with port",
    async () => assertEquals(await verifyHostKey(entries, "198.18.2.4", 2200, KEY_A), { ok: true }),
  );
  await t.step(
    "wildcard",
    async () => assertEquals(await verifyHostKey(entries, "198.18.3.7", 22, KEY_A), { ok: true }),
  );
  await t.step(
    "changed key",
    async () =>
      assertEquals(await verifyHostKey(entries, "198.18.2.2", 22, KEY_B), {
        ok: false,
        reason: "changed",
        presented: await fingerprint(KEY_B),
        expected: [await fingerprint(KEY_A)],
      }),
  );
  await t.step(
    "same host, other port is unknown",
    async () => assertEquals((await verifyHostKey(entries, "198.18.2.2", 2222, KEY_A)).ok, false),
  );
  await t.step("negated host is unknown", async () => {
    const verdict = await verifyHostKey(entries, "198.18.3.9", 22, KEY_A);
    assertEquals(verdict.ok ? "" : verdict.reason, "unknown");
  });
  await t.step("revoked key", async () => {
    const verdict = await verifyHostKey(entries, "198.18.2.2", 22, blob("ssh-ed25519", 9));
    assertEquals(verdict.ok ? "" : verdict.reason, "revoked");
  });
});

Deno.test("fingerprint() matches ssh-keygen's SHA256 format", async () => {
  // ssh-keygen -lf of a key is SHA256 over the blob, base64 without padding.

  assertEquals(
    await fingerprint(new TextEncoder().encode("abc")),
    "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0",
  );
});

Deno.test("hostKeyAlgorithms() offers only the key types pinned for the host", async () => {
  const { entries } = parseKnownHosts([
    `198.18.2.2 ssh-ed25519 ${b64(KEY_A)}`,
    `198.18.2.2 ssh-rsa ${b64(KEY_RSA)}`,
    `198.18.2.3 ssh-ed25519 ${b64(KEY_A)}`,
  ].join("\n"));
  assertEquals(await hostKeyAlgorithms(entries, "198.18.2.2", 22), [
    "ssh-ed25519",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
  ]);
  assertEquals(await hostKeyAlgorithms(entries, "198.18.2.9", 22), []);
  assertEquals(knownHostsName("::1", 2222), "[::1]:2222");
});
