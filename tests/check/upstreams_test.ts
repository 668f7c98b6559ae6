import { assertEquals, assertMatch } from "../_assert.ts";
import { checkUpstreams } from "../../src/check/upstreams.ts";
import type { LoginOutcome, LoginSpec } from "../../src/ssh/login_check.ts";
import { parseInline } from "../config/_load.ts";
import { pinnedAlgorithms } from "../../src/ssh/known_hosts.ts";

const KEY = Deno.readTextFileSync(new URL("../fixtures/keys/openssh_plain", import.meta.url));
const ENCRYPTED = Deno.readTextFileSync(
  new URL("../fixtures/keys/openssh_encrypted", import.meta.url),
);
const BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAIOkE0gKZBzU4D8yU6SXhIUhR3TSdxgaDkgvGmRgl8lGP";

const config = parseInline(
  `<server><rproxy><enabled>true</enabled><known_hosts>/kh</known_hosts><rules>
<rule host_ip="198.18.1.1"><host>198.18.2.2</host><squash_user>xfer</squash_user><keyfile>/k/squash</keyfile><connect_timeout>4</connect_timeout></rule>
<rule host_ip="198.18.1.17"><hosts><host>198.18.2.2</host><host>198.18.2.3:2222</host></hosts><keyfile>/home/$(user)/id</keyfile></rule>
</rules></rproxy></server>`,
).config!;

function audit(
  files: Record<string, string>,
  login: (spec: LoginSpec) => LoginOutcome,
  user?: string,
) {
  const specs: LoginSpec[] = [];
  return checkUpstreams(config, {
    readText: (path) => Promise.resolve(files[path]),
    login: (spec) => {
      specs.push(spec);
      return Promise.resolve(login(spec));
    },
  }, user === undefined ? {} : { user }).then((findings) => ({ findings, specs }));
}

const FILES = {
  "/kh": `198.18.2.2 ssh-ed25519 ${BLOB}\n[198.18.2.3]:2222 ssh-ed25519 ${BLOB}\n`,
  "/k/squash": KEY,
  "/home/bob/id": KEY,
};

Deno.test("each rule's servers are logged in to with its key, account and pinned key types", async () => {
  const { findings, specs } = await audit(
    FILES,
    () => ({ kind: "ok", fingerprint: "SHA256:x" }),
    "bob",
  );
  assertEquals(findings.map((f) => [f.id, f.severity]), [
    ["upstream.ok", "info"],
    ["upstream.ok", "info"],
    ["upstream.ok", "info"],
  ]);
  assertEquals(
    specs.map((
      s,
    ) => [s.host, s.port, s.username, s.timeoutMs, pinnedAlgorithms(s.pinned.forHost).join()]),
    [
      ["198.18.2.2", 22, "xfer", 4000, "ssh-ed25519"],
      ["198.18.2.2", 22, "bob", 10000, "ssh-ed25519"],
      ["198.18.2.3", 2222, "bob", 10000, "ssh-ed25519"],
    ],
  );
});

Deno.test("a per-user rule without --user says how to check it, and logs in nowhere", async () => {
  const { findings, specs } = await audit(FILES, () => ({ kind: "ok", fingerprint: "SHA256:x" }));
  assertEquals(findings[1]?.id, "upstream.user");
  assertMatch(findings[1]!.fix, /--user NAME/);
  assertEquals(specs.length, 1);
});

Deno.test("every failure names the server and says what to do", async () => {
  const outcomes: Record<string, LoginOutcome> = {
    "198.18.2.2:22": { kind: "refused", message: '198.18.2.2:22 refused the key for user "bob"' },
    "198.18.2.3:2222": {
      kind: "hostkey",
      reason: "unknown",
      presented: "SHA256:new",
      expected: [],
    },
  };
  const { findings } = await audit(
    { ...FILES, "/k/squash": ENCRYPTED },
    (spec) => outcomes[`${spec.host}:${spec.port}`]!,
    "bob",
  );
  assertEquals(findings.map((f) => f.id), [
    "upstream.keyfile",
    "upstream.login",
    "upstream.hostkey",
  ]);
  assertMatch(findings[0]!.message, /rule 1: Keyfile "\/k\/squash" is encrypted/);
  assertEquals(
    findings[1]!.fix,
    "append /home/bob/id.pub to ~bob/.ssh/authorized_keys on the server",
  );
  assertEquals(
    findings[2]!.message,
    "rule 2 198.18.2.3:2222 as bob: no known_hosts entry; it presents SHA256:new",
  );
  assertMatch(findings[2]!.fix, /ssh-keyscan -p 2222 198\.18\.2\.3/);
});

Deno.test("without known_hosts nothing is logged in to", async () => {
  const { findings, specs } = await audit({}, () => ({ kind: "ok", fingerprint: "" }));
  assertEquals([findings.map((f) => f.id), specs.length], [["upstream.known_hosts"], 0]);
});
