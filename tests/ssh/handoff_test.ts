import { assertEquals, assertIncludes, assertThrows } from "../_assert.ts";
import { buildHandoff, HandoffError, type HandoffSpec } from "../../src/ssh/handoff.ts";
import { parseIpEndpoint } from "../../src/net/endpoint.ts";

const ENV: Record<string, string> = {
  USER: "bear",
  LOGNAME: "bear",
  HOME: "/home/bear",
  TERM: "xterm-256color",
  SSH_AUTH_SOCK: "/tmp/agent",
  SSH_ORIGINAL_COMMAND: "scp -t /in",
  LD_PRELOAD: "/tmp/evil.so",
  XFERPROXY_CONFIG: "/tmp/evil.conf",
};

function spec(overrides: Partial<HandoffSpec> = {}): HandoffSpec {
  const upstream = parseIpEndpoint("198.18.2.2:2222", 22);
  if (typeof upstream === "string") throw new Error(upstream);
  return {
    upstream,
    user: "xfer",
    keyPath: "/etc/xferproxy/keys/id_ed25519",
    knownHostsPath: "/etc/xferproxy/known_hosts",
    hostKeyAlgorithms: ["ssh-ed25519"],
    connectTimeout: 10,
    request: { kind: "exec", command: "scp -t /in" },
    pty: false,
    logLevel: 0,
    env: (name) => ENV[name],
    ...overrides,
  };
}

/** The words after the last option: mode flags, "--", host and command. */
function tail(argv: readonly string[]): string[] {
  return argv.slice(argv.indexOf("-l"));
}

Deno.test("an exec request: the command is one argument after --, no pty", () => {
  const handoff = buildHandoff(spec());
  assertEquals(handoff.path, "/usr/bin/ssh");
  assertEquals(handoff.argv.slice(0, 3), ["xferproxy-ssh", "-F", "none"]);
  assertEquals(tail(handoff.argv), ["-l", "xfer", "-T", "--", "198.18.2.2", "scp -t /in"]);
  assertIncludes(handoff.argv.join(" "), "-y -p 2222 -l");
});

Deno.test("subsystems use -s, shells send no command, a client pty becomes -tt", () => {
  assertEquals(
    tail(buildHandoff(spec({ request: { kind: "subsystem", name: "sftp" } })).argv),
    ["-l", "xfer", "-T", "-s", "--", "198.18.2.2", "sftp"],
  );
  assertEquals(
    tail(buildHandoff(spec({ request: { kind: "shell" }, pty: true })).argv),
    ["-l", "xfer", "-tt", "--", "198.18.2.2"],
  );
});

Deno.test("every option that could escape the rule is pinned", () => {
  const options = new Map<string, string>();
  const argv = buildHandoff(spec({ connectTimeout: 7, logLevel: 2 })).argv;
  argv.forEach((word, i) => {
    if (argv[i - 1] === "-o") options.set(word.split("=")[0]!, word.slice(word.indexOf("=") + 1));
  });
  assertEquals(Object.fromEntries(options), {
    BatchMode: "yes",
    IdentitiesOnly: "yes",
    IdentityAgent: "none",
    IdentityFile: '"/etc/xferproxy/keys/id_ed25519"',
    PreferredAuthentications: "publickey",
    PubkeyAuthentication: "yes",
    PasswordAuthentication: "no",
    KbdInteractiveAuthentication: "no",
    HostbasedAuthentication: "no",
    StrictHostKeyChecking: "yes",
    UserKnownHostsFile: '"/etc/xferproxy/known_hosts"',
    GlobalKnownHostsFile: "/dev/null",
    UpdateHostKeys: "no",
    CheckHostIP: "no",
    HostKeyAlgorithms: "ssh-ed25519",
    ConnectTimeout: "7",
    ConnectionAttempts: "1",
    ServerAliveInterval: "15",
    ServerAliveCountMax: "4",
    ClearAllForwardings: "yes",
    ForwardAgent: "no",
    ForwardX11: "no",
    PermitLocalCommand: "no",
    ControlMaster: "no",
    ControlPath: "none",
    ProxyCommand: "none",
    ProxyJump: "none",
    Tunnel: "no",
    EscapeChar: "none",
    LogLevel: "DEBUG",
    SyslogFacility: "DAEMON",
  });
});

Deno.test("with a pty ssh logs errors only: it would tell the terminal the internal address", () => {
  const argv = buildHandoff(spec({ pty: true, logLevel: 2 })).argv;
  assertIncludes(argv.join(" "), "-o LogLevel=ERROR");
});

Deno.test("the environment keeps only PATH, the account's names and home, and TERM with a pty", () => {
  assertEquals(buildHandoff(spec()).env, [
    "PATH=/usr/bin:/bin",
    "USER=bear",
    "LOGNAME=bear",
    "HOME=/home/bear",
  ]);
  assertEquals(buildHandoff(spec({ pty: true })).env.at(-1), "TERM=xterm-256color");
  const hostile: Record<string, string> = {
    ...ENV,
    TERM: "x\nLD_PRELOAD=/tmp/evil.so",
    HOME: "/tmp\n",
  };
  assertEquals(
    buildHandoff(spec({ pty: true, env: (n) => hostile[n] })).env,
    ["PATH=/usr/bin:/bin", "USER=bear", "LOGNAME=bear"],
  );
});

Deno.test("paths are quoted and their % doubled; unrepresentable paths are refused", () => {
  const argv = buildHandoff(spec({ keyPath: "/keys/100% sure/id" })).argv;
  assertIncludes(argv.join("\n"), 'IdentityFile="/keys/100%% sure/id"');
  assertThrows(
    () => buildHandoff(spec({ knownHostsPath: '/etc/"known"' })),
    HandoffError,
    "cannot be passed to ssh",
  );
  assertThrows(() => buildHandoff(spec({ hostKeyAlgorithms: [] })), HandoffError, "pinned");
});
