/**
 * OpenSSH parts every bed uses: keys, throwaway accounts, and sshd started
 * in a namespace with the settings tests need.
 * @module
 */

import { must, run, waitFor } from "./exec.ts";

/** Makes an unencrypted ed25519 key pair at `path` and `path.pub`. */
export async function keygen(path: string, comment = "xferproxy-test"): Promise<void> {
  await must(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path]);
}

/** `type base64` of a public key file, as known_hosts and authorized_keys want it. */
export async function publicKey(path: string): Promise<string> {
  return (await Deno.readTextFile(path)).trim().split(" ").slice(0, 2).join(" ");
}

/** Options of `addTestUser`. */
export interface TestUserOptions {
  /** Supplementary groups. */
  readonly groups?: readonly string[];
  /** Login shell, /bin/sh unless given: what sshd runs commands with (`shell -c COMMAND`). */
  readonly shell?: string;
}

/**
 * Creates a test account with home `home` (and its .ssh) and no password, after removing one
 * left over by an interrupted run; pushes its removal (its processes killed first) onto
 * `cleanups`. Kills only this account's processes.
 */
export async function addTestUser(
  user: string,
  home: string,
  cleanups: Array<() => Promise<unknown>>,
  options: TestUserOptions = {},
): Promise<void> {
  const { groups = [], shell = "/bin/sh" } = options;
  const remove = async () => {
    await run(["pkill", "-KILL", "-u", user]);
    await run(["userdel", user]);
  };
  await remove();
  const groupArgs = groups.length ? ["-G", groups.join(",")] : [];
  await must(["useradd", "--badname", "-M", "-d", home, "-s", shell, ...groupArgs, user]);
  cleanups.push(remove);
  // A locked password ("!") makes sshd refuse even key logins when PAM is off; "*" means "no password".
  await must(["usermod", "-p", "*", user]);
  await Deno.mkdir(`${home}/.ssh`, { recursive: true, mode: 0o755 });
  await must(["chown", "-R", `${user}:`, home]);
}

/**
 * ssh client options every bed uses: no user config, no prompts, only the bed's known hosts
 * and key, short timeouts.
 */
export function sshClientOptions(knownHosts: string, key: string): string[] {
  return [
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-i",
    key,
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "LogLevel=ERROR",
  ];
}

/** The sshd_config lines every bed's servers share. */
export function sshdBaseConfig(
  o: { listen: readonly string[]; hostKey: string; pidFile: string; authorizedKeys: string },
): string {
  return [
    ...o.listen.map((address) => `ListenAddress ${address}`),
    "Port 22",
    `HostKey ${o.hostKey}`,
    `PidFile ${o.pidFile}`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    "StrictModes no",
    "UsePAM no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin no",
    "LogLevel VERBOSE",
    // Many sessions start at once in the tests (and at busy sites): sshd drops the
    // 11th concurrent unauthenticated connection by default.
    "MaxStartups 100:30:200",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
  ].join("\n");
}

/** Where sshd runs: `wrap` prefixes its command line (e.g. a private mount namespace). */
export interface SshdOptions {
  /** Addresses it must be listening on before this returns. */
  readonly waitFor: readonly string[];
  readonly wrap?: readonly string[];
}

/** Checks the config, starts sshd in namespace `ns`, and waits until it listens. */
export async function startSshd(
  ns: string,
  config: string,
  options: SshdOptions,
): Promise<Deno.ChildProcess> {
  await Deno.mkdir("/run/sshd", { recursive: true });
  await must(["/usr/sbin/sshd", "-t", "-f", config]);
  const sshd = ["/usr/sbin/sshd", "-D", "-E", `${config}.log`, "-f", config];
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...(options.wrap ?? []), ...sshd],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitFor(`sshd on ${options.waitFor.join(", ")} in ${ns}`, async () => {
    const listening = (await run(["ip", "netns", "exec", ns, "ss", "-Hltn"])).stdout;
    return options.waitFor.every((ip) =>
      listening.includes(ip.includes(":") ? `[${ip}]:22` : `${ip}:22`)
    );
  });
  return child;
}
