import { assertEquals } from "../_assert.ts";
import { configSource } from "../../src/config/source.ts";
import { DEFAULT_CONFIG_PATH } from "../../src/config/spec.ts";

const env = (values: Record<string, string>) => (name: string) => values[name];
const EVIL = { XFERPROXY_CONFIG: "/tmp/evil.conf" };

Deno.test("an administrator's command: --config, then XFERPROXY_CONFIG, then the default", () => {
  assertEquals(configSource("administrator", "/a", env(EVIL)), { path: "/a", system: false });
  assertEquals(configSource("administrator", undefined, env(EVIL)).path, "/tmp/evil.conf");
  assertEquals(
    configSource("administrator", undefined, env({ XFERPROXY_CONFIG: "" })).path,
    DEFAULT_CONFIG_PATH,
  );
  assertEquals(configSource("administrator", undefined, env({})).path, DEFAULT_CONFIG_PATH);
});

Deno.test("under sudo the caller's environment never names the file", () => {
  // sudo -E or env_keep carries the caller's variables along.
  const sudo = env({ ...EVIL, SUDO_UID: "1001" });
  assertEquals(configSource("administrator", undefined, sudo).path, DEFAULT_CONFIG_PATH);
  assertEquals(configSource("administrator", "/a", sudo).path, "/a");
});

Deno.test("a reverse session takes ForceCommand's --config, never the client's environment", () => {
  assertEquals(configSource("session", undefined, env(EVIL)), {
    path: DEFAULT_CONFIG_PATH,
    system: false,
  });
  assertEquals(configSource("session", "/etc/xp/site.conf", env(EVIL)).path, "/etc/xp/site.conf");
});

Deno.test("a privileged call reads the system file only, as root's own file", () => {
  assertEquals(configSource("privileged", "/tmp/evil.conf", env(EVIL)), {
    path: DEFAULT_CONFIG_PATH,
    system: true,
  });
});
