/**
 * Forward mode end to end: the daemon in a proxy namespace between an inside
 * client and an outside server that cannot reach each other, real curl,
 * ssh/scp through `xferproxy forward connect` as ProxyCommand, iperf3 TCP and
 * UDP through an allocated port.
 */
import { assertEquals, assertIncludes, assertMatch, assertOk } from "../_assert.ts";
import { must, run, waitFor } from "../testbed/exec.ts";
import { BINARY, PYTHON, ROOT } from "../testbed/paths.ts";
import { readUntil } from "../testbed/lines.ts";
import {
  createForwardBed,
  FIP,
  FIP6,
  type ForwardBed,
  forwardConfig,
  OUT_USER,
} from "../testbed/forward_bed.ts";

const isRoot = Deno.uid() === 0;
const API = `http://${FIP.proxyIn}:9091`;

async function curl(bed: ForwardBed, args: string[]): Promise<{ status: number; body: string }> {
  const result = await bed.inNs(bed.ns.inside, [
    "curl",
    "-s",
    "-o",
    "-",
    "-w",
    "\n%{http_code}",
    ...args,
  ]);
  const lines = result.stdout.split("\n");
  return { status: Number(lines.pop()), body: lines.join("\n") };
}

/** A forward session's own rules: mark and DNAT, for TCP and for UDP (accept and masquerade are shared). */
const SESSION_RULES = 4;

/** Alice's new session (201 asserted), as the API describes it. */
async function allocate(bed: ForwardBed, request: Record<string, unknown>) {
  const created = await curl(bed, [
    "-u",
    "alice:wonder",
    "-d",
    JSON.stringify(request),
    `${API}/v1/sessions`,
  ]);
  assertEquals(created.status, 201, created.body);
  return JSON.parse(created.body);
}

async function rulesWith(bed: ForwardBed, id: string): Promise<number> {
  const save = await must(["ip", "netns", "exec", bed.ns.proxy, "iptables-save"]);
  return save.split("\n").filter((l) => l.includes(`xferproxy:${id}:`)).length;
}

async function addUser(
  bed: ForwardBed,
  name: string,
  password: string,
  ...extra: string[]
): Promise<void> {
  await must([
    BINARY,
    "forward",
    "user",
    "add",
    name,
    "--password-stdin",
    ...extra,
    "--config",
    bed.configPath,
  ], { stdin: password });
}

/**
 * Runs `forward connect … --print-mapping` in the inside namespace and `use` on the mapping line it
 * prints, while it holds the session (with keepalives) until its stdin closes; then its stderr.
 */
async function holdingMapping<T>(
  bed: ForwardBed,
  args: string[],
  use: (line: string) => Promise<T>,
  env: Record<string, string> = {},
): Promise<{ result: T; stderr: string }> {
  const holder = new Deno.Command("ip", {
    args: ["netns", "exec", bed.ns.inside, BINARY, "forward", "connect", ...args],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(holder.stderr).text();
  const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let result: T;
  try {
    const line = await readUntil(
      reader,
      "\n",
      30_000,
      async () => `forward connect printed no mapping: ${await stderr}`,
    );
    result = await use(line);
  } finally {
    await holder.stdin.close().catch(() => {});
    await holder.status;
    reader.cancel().catch(() => {});
  }
  return { result, stderr: await stderr };
}

Deno.test({
  name: "forward mode: API, ProxyCommand, iperf3, lifetimes, limits",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const bed = await createForwardBed();
    const config = forwardConfig(bed.dir);
    try {
      await Deno.writeTextFile(bed.configPath, config);
      await addUser(bed, "alice", "wonder", "--allow", `${FIP.outside}/32,outside.example`);
      await addUser(bed, "root_admin", "admin-pw", "--allow", "*", "--admin");
      await t.step("users are stored hashed in a root-only file", async () => {
        const info = await Deno.stat(`${bed.dir}/users.json`);
        assertEquals((info.mode ?? 0) & 0o777, 0o600);
        const text = await Deno.readTextFile(`${bed.dir}/users.json`);
        assertEquals(text.includes("wonder"), false);
        const users = JSON.parse(text).users;
        assertOk(users.alice.salt !== users.root_admin.salt);
        const list = await must([BINARY, "forward", "user", "list", "--config", bed.configPath]);
        assertEquals(
          list,
          `alice  allow: ${FIP.outside}/32,outside.example\nroot_admin (admin)  allow: *\n`,
        );
      });
      await bed.startDaemon(config);

      await t.step("the daemon logs Aspera Proxy's start-up lines", () => {
        assertMatch(bed.daemonLog(), /LOG proxy service ready \(port range 5000-5199\)/);
        assertMatch(bed.daemonLog(), /LOG Started on port\(s\) 9091/);
      });

      await t.step("curl: create, list, keepalive, delete, and the errors", async () => {
        const session = await allocate(bed, {
          destination: FIP.outside,
          ssh_port: 22,
          udp_port: 33001,
        });
        assertEquals([session.proxy_host, session.port, session.keepalive_interval], [
          FIP.proxyIn,
          5000,
          1,
        ]);
        assertOk(Date.parse(session.expires_at) > Date.now());
        assertEquals(await rulesWith(bed, session.id), SESSION_RULES);
        const listed = await curl(bed, ["-u", "alice:wonder", `${API}/v1/sessions`]);
        assertEquals(JSON.parse(listed.body).map((s: { id: string }) => s.id), [session.id]);
        assertEquals(
          (await curl(bed, [
            "-u",
            "alice:wonder",
            "-X",
            "POST",
            `${API}/v1/sessions/${session.id}/keepalive`,
          ])).status,
          200,
        );
        assertEquals(
          (await curl(bed, [
            "-u",
            "alice:wonder",
            "-X",
            "DELETE",
            `${API}/v1/sessions/${session.id}`,
          ])).status,
          204,
        );
        assertEquals(await rulesWith(bed, session.id), 0);
        assertEquals(
          (await curl(bed, [
            "-u",
            "alice:wonder",
            "-X",
            "DELETE",
            `${API}/v1/sessions/${session.id}`,
          ])).status,
          404,
        );
        assertEquals(
          (await curl(bed, ["-u", "alice:wonder", "-d", "{not json", `${API}/v1/sessions`])).status,
          400,
        );
        assertEquals(
          (await curl(bed, [
            "-u",
            "alice:wonder",
            "-d",
            JSON.stringify({ destination: "x".repeat(20000) }),
            `${API}/v1/sessions`,
          ])).status,
          413,
        );
        assertEquals(
          (await curl(bed, [
            "-u",
            "alice:wonder",
            "-d",
            JSON.stringify({ destination: "bad name!" }),
            `${API}/v1/sessions`,
          ])).status,
          400,
        );
        const health = await curl(bed, [`${API}/healthz`]);
        assertEquals([health.status, JSON.parse(health.body).status], [200, "ok"]);
        // Behind the API's login, like the sessions.
        assertEquals((await curl(bed, [`${API}/metrics`])).status, 401);
        const metrics = await curl(bed, ["-u", "alice:wonder", `${API}/metrics`]);
        assertMatch(metrics.body, /^xferproxy_build_info\{version="[^"]+"\} 1$/m);
        assertMatch(metrics.body, /^xferproxy_forward_allocations_total 1$/m);
        assertMatch(metrics.body, /^xferproxy_forward_ports_free 200$/m);
      });

      await t.step(
        "a private destination, or one not allowed for the user, is refused",
        async () => {
          const cases: Array<[string, RegExp]> = [
            ["10.0.0.5", /10\.0\.0\.0\/8, which the proxy never reaches/],
            ["127.0.0.1", /127\.0\.0\.0\/8/],
            ["169.254.1.1", /169\.254\.0\.0\/16/],
            [FIP.proxyIn, /198\.18\.30\.0\/24/],
            ["198.19.40.3", /198\.19\.40\.0\/24, which the proxy never reaches/],
            ["198.19.50.5", /not in your allowed destinations/],
          ];
          for (const [destination, reason] of cases) {
            const refused = await curl(bed, [
              "-u",
              "alice:wonder",
              "-d",
              JSON.stringify({ destination }),
              `${API}/v1/sessions`,
            ]);
            assertEquals(refused.status, 403, destination);
            assertMatch(JSON.parse(refused.body).error, reason);
          }
          // The red team's trick: the whole space as two halves (the daemon reads users per login).
          await addUser(bed, "halves", "halves-pw", "--allow", "0.0.0.0/1,128.0.0.0/1");
          for (const destination of ["127.0.0.1", FIP.proxyIn, FIP.proxyOut, "10.0.0.5"]) {
            const refused = await curl(bed, [
              "-u",
              "halves:halves-pw",
              "-d",
              JSON.stringify({ destination }),
              `${API}/v1/sessions`,
            ]);
            assertEquals(refused.status, 403, `halves → ${destination}`);
            assertMatch(JSON.parse(refused.body).error, /at least as specific is allowed/);
          }
        },
      );

      await t.step("wrong passwords get 401, then a per-address back-off (429)", async () => {
        for (let i = 0; i < 3; i++) {
          const r = await curl(bed, ["-u", "alice:wrong", `${API}/v1/sessions`]);
          assertEquals(r.status, 401);
        }
        const blocked = await curl(bed, ["-u", "alice:wonder", "-D", "-", `${API}/v1/sessions`]);
        assertEquals(blocked.status, 429);
        assertMatch(blocked.body, /retry-after: \d+/i);
        await waitFor(
          "the back-off to pass",
          async () =>
            (await curl(bed, ["-u", "alice:wonder", `${API}/v1/sessions`])).status === 200,
          10_000,
          250,
        );
      });

      const connect = (extra = "") =>
        `${BINARY} forward connect --proxy dnat://alice:wonder@${FIP.proxyIn}:9091 ${extra}%h %p`;

      await t.step(
        "ssh and scp through ProxyCommand; the outside sees the proxy's address",
        async () => {
          const ssh = await bed.inNs(bed.ns.inside, [
            "ssh",
            ...bed.sshOptions(connect()),
            `${OUT_USER}@${FIP.outside}`,
            "printenv SSH_CONNECTION",
          ]);
          assertEquals(ssh.code, 0, ssh.stderr);
          assertEquals(ssh.stdout.split(" ")[0], FIP.proxyOut);
          const src = `${bed.dir}/payload.bin`;
          await must(["dd", "if=/dev/urandom", `of=${src}`, "bs=1M", "count=8", "status=none"]);
          await Deno.chmod(src, 0o644);
          const scp = await bed.inNs(bed.ns.inside, [
            "scp",
            ...bed.sshOptions(connect()),
            src,
            `${OUT_USER}@${FIP.outside}:${bed.dir}/out-home/payload.bin`,
          ]);
          assertEquals(scp.code, 0, scp.stderr);
          assertEquals(
            (await must(["sha256sum", `${bed.dir}/out-home/payload.bin`])).split(" ")[0],
            (await must(["sha256sum", src])).split(" ")[0],
          );
          // The client deletes its session when ssh ends.
          await waitFor(
            "sessions to be deleted",
            async () =>
              JSON.parse((await curl(bed, ["-u", "alice:wonder", `${API}/v1/sessions`])).body)
                .length === 0,
          );
        },
      );

      await t.step(
        "forward connect: a password from a file or the environment never shows in ps; one in the URL warns",
        async () => {
          // A password of this run only: other runs' processes on the host cannot hold it.
          const secret = `pw-${crypto.randomUUID()}`;
          await addUser(bed, "carol", secret, "--allow", `${FIP.outside}/32`);
          const passFile = `${bed.dir}/carol.pass`;
          await Deno.writeTextFile(passFile, `${secret}\n`, { mode: 0o600 });
          /** Holds a session: its mapping line, whether ps shows the password meanwhile, stderr. */
          const hold = async (args: string[], env: Record<string, string> = {}) => {
            const { result, stderr } = await holdingMapping(bed, args, async (line) => {
              // What every user of the host sees: full command lines, unlimited width.
              const ps = await must(["ps", "-e", "-w", "-w", "-o", "args"]);
              return { line, inPs: ps.includes(secret) };
            }, env);
            return { ...result, stderr };
          };
          const common = ["--print-mapping", FIP.outside];
          const fromFile = await hold([
            "--proxy",
            `dnat://carol@${FIP.proxyIn}`,
            "--password-file",
            passFile,
            ...common,
          ]);
          assertMatch(fromFile.line, /"port":\d+/, fromFile.stderr);
          assertEquals([fromFile.inPs, fromFile.stderr], [false, ""]);
          const fromEnv = await hold(["--proxy", `dnat://carol@${FIP.proxyIn}`, ...common], {
            XFERPROXY_PROXY_PASS: secret,
          });
          assertMatch(fromEnv.line, /"port":\d+/, fromEnv.stderr);
          assertEquals([fromEnv.inPs, fromEnv.stderr], [false, ""]);
          // In the URL it still works, ps shows it (so the look above can see a password), and
          // the client says so in one line.
          const inUrl = await hold([
            "--proxy",
            `dnat://carol:${secret}@${FIP.proxyIn}`,
            ...common,
          ]);
          assertMatch(inUrl.line, /"port":\d+/, inUrl.stderr);
          assertEquals([inUrl.inPs, inUrl.stderr], [
            true,
            "xferproxy: WARN the password in the --proxy URL shows in ps to every user of this host; use --password-file PATH or XFERPROXY_PROXY_PASS\n",
          ]);
        },
      );

      await t.step("iperf3 TCP and UDP through one allocated port", async () => {
        await holdingMapping(bed, [
          "--proxy",
          `dnat://alice:wonder@${FIP.proxyIn}`,
          "--udp-port",
          "5201",
          "--print-mapping",
          FIP.outside,
          "5201",
        ], async (line) => {
          const mapping = JSON.parse(line);
          assertEquals([mapping.proxy_host, mapping.udp_port, mapping.ssh_port], [
            FIP.proxyIn,
            5201,
            5201,
          ]);
          const tcp = await bed.inNs(bed.ns.inside, [
            "iperf3",
            "-c",
            FIP.proxyIn,
            "-p",
            String(mapping.port),
            "-t",
            "2",
            "-J",
          ]);
          assertEquals(tcp.code, 0, tcp.stdout.slice(0, 500));
          assertOk(JSON.parse(tcp.stdout).end.sum_received.bytes > 1_000_000);
          const udp = await bed.inNs(bed.ns.inside, [
            "iperf3",
            "-c",
            FIP.proxyIn,
            "-p",
            String(mapping.port),
            "-u",
            "-b",
            "100M",
            "-l",
            "1400",
            "-t",
            "2",
            "-J",
          ]);
          assertEquals(udp.code, 0, udp.stdout.slice(0, 500));
          const sum = JSON.parse(udp.stdout).end.sum;
          assertOk(sum.packets > 1000 && sum.lost_percent < 10, JSON.stringify(sum));
        });
        await waitFor(
          "the mapping's session to be deleted",
          async () =>
            JSON.parse((await curl(bed, ["-u", "alice:wonder", `${API}/v1/sessions`])).body)
              .length === 0,
        );
      });

      await t.step("IPv6: allocation, ssh and iperf3 UDP through ip6tables DNAT", async () => {
        await addUser(bed, "six", "six-pw", "--allow", `${FIP6.outside}/128`);
        const api6 = `http://[${FIP6.proxyIn}]:9091`;
        const create = async (body: Record<string, unknown>) => {
          const r = await curl(bed, [
            "-g",
            "-u",
            "six:six-pw",
            "-d",
            JSON.stringify(body),
            `${api6}/v1/sessions`,
          ]);
          assertEquals(r.status, 201, `${r.body} ${bed.daemonLog()}`);
          return JSON.parse(r.body);
        };
        const sshSession = await create({ destination: FIP6.outside, ssh_port: 22 });
        assertEquals([sshSession.client, sshSession.proxy_host], [FIP6.inside, FIP6.proxyIn]);
        const save6 = await must(["ip", "netns", "exec", bed.ns.proxy, "ip6tables-save"]);
        assertIncludes(save6, `xferproxy:${sshSession.id}:`);
        // The outside sees the proxy's IPv6 address: the client's is masqueraded.
        const ssh = await bed.inNs(bed.ns.inside, [
          "ssh",
          ...bed.sshOptions("none"),
          "-o",
          `HostKeyAlias=${FIP.outside}`,
          "-p",
          String(sshSession.port),
          `${OUT_USER}@${FIP6.proxyIn}`,
          "echo $SSH_CONNECTION",
        ]);
        assertEquals(ssh.code, 0, ssh.stderr);
        assertEquals(ssh.stdout.split(" ")[0], FIP6.proxyOut);
        const iperf = await create({ destination: FIP6.outside, ssh_port: 5201, udp_port: 5201 });
        const udp = await bed.inNs(bed.ns.inside, [
          "iperf3",
          "-6",
          "-u",
          "-b",
          "20M",
          "-c",
          FIP6.proxyIn,
          "-p",
          String(iperf.port),
          "-t",
          "2",
          "-J",
        ]);
        assertEquals(udp.code, 0, udp.stdout.slice(0, 500));
        assertOk(JSON.parse(udp.stdout).end.sum.bytes > 1_000_000);
        for (const s of [sshSession, iperf]) {
          const gone = await curl(bed, [
            "-g",
            "-u",
            "six:six-pw",
            "-X",
            "DELETE",
            `${api6}/v1/sessions/${s.id}`,
          ]);
          assertEquals(gone.status, 204);
        }
        const after = await must(["ip", "netns", "exec", bed.ns.proxy, "ip6tables-save"]);
        assertEquals(after.includes(`xferproxy:${sshSession.id}:`), false);
        // An IPv4 client is still an IPv4 client on the dual-stack listener.
        const v4 = await curl(bed, ["-u", "alice:wonder", `${API}/v1/sessions`]);
        assertEquals(v4.status, 200);
      });

      await t.step("a session without keepalives expires and its rules go", async () => {
        const created = JSON.parse(
          (await curl(bed, [
            "-u",
            "alice:wonder",
            "-d",
            JSON.stringify({ destination: FIP.outside }),
            `${API}/v1/sessions`,
          ])).body,
        );
        assertEquals(await rulesWith(bed, created.id), SESSION_RULES);
        await waitFor("expiry", async () => (await rulesWith(bed, created.id)) === 0, 15_000, 250);
        assertEquals(
          (await curl(bed, ["-u", "alice:wonder", `${API}/v1/sessions/${created.id}`])).status,
          404,
        );
        // The rules go first, then the line is logged: wait for it to reach the daemon's stderr.
        const line = new RegExp(`Removed forwarding of session ${created.id} \\(no keepalive\\)`);
        await waitFor(
          "the expiry log line",
          () => Promise.resolve(line.test(bed.daemonLog())),
          5_000,
        );
        assertMatch(bed.daemonLog(), line);
      });

      await t.step("100 concurrent allocations get 100 distinct ports", async () => {
        // Long enough that none of the 100 expires (and frees its port) while the others are made.
        await bed.startDaemon(config.replace("<session_timeout>4", "<session_timeout>120"));
        const body = JSON.stringify({ destination: FIP.outside });
        const script =
          `seq 100 | xargs -P 100 -I{} curl -s -u alice:wonder -d '${body}' ${API}/v1/sessions`;
        const out = await bed.inNs(bed.ns.inside, ["bash", "-c", script], { timeoutMs: 120_000 });
        const sessions = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
        assertEquals(sessions.length, 100);
        assertEquals(new Set(sessions.map((s) => s.port)).size, 100);
        assertOk(sessions.every((s) => s.port >= 5000 && s.port <= 5199));
        const admin = JSON.parse(
          (await curl(bed, ["-u", "root_admin:admin-pw", `${API}/v1/sessions`])).body,
        );
        assertEquals(admin.length, 100);
        await Promise.all(
          sessions.map((s) =>
            curl(bed, ["-u", "alice:wonder", "-X", "DELETE", `${API}/v1/sessions/${s.id}`])
          ),
        );
      });

      await t.step("an exhausted port range answers 503 and installs nothing", async () => {
        await bed.startDaemon(config.replace("<port_range_high>5199", "<port_range_high>5001"));
        const body = JSON.stringify({ destination: FIP.outside });
        for (const port of [5000, 5001]) {
          const ok = await curl(bed, ["-u", "alice:wonder", "-d", body, `${API}/v1/sessions`]);
          assertEquals([ok.status, JSON.parse(ok.body).port], [201, port]);
        }
        const full = await curl(bed, ["-u", "alice:wonder", "-d", body, `${API}/v1/sessions`]);
        assertEquals(full.status, 503);
        assertEquals(JSON.parse(full.body).error, "no free proxy port in 5000-5001");
      });

      await t.step(
        "authentication off: a session is its client address's; another address neither sees nor touches it",
        async () => {
          const neighbour = "198.18.30.21";
          await must(["ip", "-n", bed.ns.inside, "addr", "add", `${neighbour}/24`, "dev", "i0"]);
          await bed.startDaemon(
            config.replace("<authentication>true", "<authentication>false")
              .replace("<session_timeout>4", "<session_timeout>120"),
          );
          // Any public destination, and no traffic: the rules are what this step looks at.
          const body = JSON.stringify({ destination: "198.19.50.5" });
          const created = await curl(bed, ["-u", "alice:x", "-d", body, `${API}/v1/sessions`]);
          assertEquals(created.status, 201, created.body);
          const session = JSON.parse(created.body);
          assertEquals(session.client, FIP.inside);
          // Unguessable: a random (version 4) UUID.
          assertMatch(
            session.id,
            /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
          );
          const fromNeighbour = (args: string[]) => curl(bed, ["--interface", neighbour, ...args]);
          // The attack: list, keep alive, delete from another address, under the same name or none.
          for (const name of [["-u", "alice:x"], []]) {
            const listed = await fromNeighbour([...name, `${API}/v1/sessions`]);
            assertEquals([listed.status, JSON.parse(listed.body)], [200, []]);
            for (
              const [method, path] of [
                ["POST", `${session.id}/keepalive`],
                ["DELETE", session.id],
                ["GET", session.id],
              ]
            ) {
              const r = await fromNeighbour([...name, "-X", method!, `${API}/v1/sessions/${path}`]);
              assertEquals(r.status, 404, `${name.join(" ")} ${method} ${r.body}`);
            }
          }
          assertEquals(await rulesWith(bed, session.id), SESSION_RULES);
          // The address that made it keeps it and ends it, whatever name it sends.
          const kept = await curl(bed, [
            "-X",
            "POST",
            `${API}/v1/sessions/${session.id}/keepalive`,
          ]);
          assertEquals(kept.status, 200, kept.body);
          const listed = await curl(bed, ["-u", "bob:y", `${API}/v1/sessions`]);
          assertEquals(JSON.parse(listed.body).map((s: { id: string }) => s.id), [session.id]);
          const gone = await curl(bed, [
            "-u",
            "bob:y",
            "-X",
            "DELETE",
            `${API}/v1/sessions/${session.id}`,
          ]);
          assertEquals(gone.status, 204);
          assertEquals(await rulesWith(bed, session.id), 0);
        },
      );

      await t.step(
        "a flood of 20,000 half-sent requests: the daemon lives, answers and keeps its rules",
        async () => {
          // Four flooding addresses and a fifth for the administrator's checks.
          const flooders = ["198.18.30.11", "198.18.30.12", "198.18.30.13", "198.18.30.14"];
          const spare = "198.18.30.20";
          for (const ip of [...flooders, spare]) {
            await must(["ip", "-n", bed.ns.inside, "addr", "add", `${ip}/24`, "dev", "i0"]);
          }
          const spareCurl = (args: string[]) => curl(bed, ["--interface", spare, ...args]);
          // The session must outlive a slow answer under the flood: what is tested is that the
          // daemon answers and keeps the session, not how fast (the 4 s expiry made it flaky).
          await bed.startDaemon(config.replace("<session_timeout>4", "<session_timeout>60"));
          const created = await spareCurl([
            "-u",
            "alice:wonder",
            "-d",
            JSON.stringify({ destination: FIP.outside, ssh_port: 22, udp_port: 33001 }),
            `${API}/v1/sessions`,
          ]);
          assertEquals(created.status, 201, created.body);
          const session = JSON.parse(created.body);
          // Two processes (one process may hold only so many fds), two addresses each, 5,000 per address.
          const floods = [flooders.slice(0, 2), flooders.slice(2)].map((sources) =>
            new Deno.Command("ip", {
              args: [
                "netns",
                "exec",
                bed.ns.inside,
                PYTHON,
                `${ROOT}tests/e2e/probes/flood.py`,
                FIP.proxyIn,
                "9091",
                "5000",
                "14",
                ...sources,
              ],
              stdout: "piped",
              stderr: "inherit",
              signal: AbortSignal.timeout(90_000),
            }).spawn()
          );
          const readers = floods.map((f) =>
            f.stdout.pipeThrough(new TextDecoderStream()).getReader()
          );
          const outs = ["", ""];
          for (const [i, reader] of readers.entries()) {
            while (!outs[i]!.includes("\n")) {
              const { value, done } = await reader.read();
              if (done) break;
              outs[i] += value;
            }
            assertMatch(outs[i]!, /^sent \d+/);
          }
          // While the flood holds its connections (and until it ends): the API answers, and
          // keepalives keep the session.
          let flooding = true;
          const ended = Promise.all(floods.map((f) => f.status)).finally(() => flooding = false);
          for (let i = 0; i < 60 && flooding; i++) {
            assertEquals((await spareCurl([`${API}/healthz`])).status, 200);
            const kept = await spareCurl([
              "-u",
              "alice:wonder",
              "-X",
              "POST",
              `${API}/v1/sessions/${session.id}/keepalive`,
            ]);
            assertEquals(kept.status < 300, true, kept.body);
            await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 1_000))]);
          }
          for (const [i, reader] of readers.entries()) {
            while (true) {
              const { value, done } = await reader.read();
              if (done) break;
              outs[i] += value;
            }
            assertEquals((await floods[i]!.status).code, 0, outs[i]);
            // Held past the 10 s request timeout: the daemon closed every one it had accepted.
            const [, closed, total] = /closed (\d+) of (\d+)/.exec(outs[i]!) ?? [];
            assertEquals(closed, total, outs[i]);
          }
          assertEquals(await rulesWith(bed, session.id), SESSION_RULES);
          assertEquals((await spareCurl([`${API}/healthz`])).status, 200);
          assertMatch(bed.daemonLog(), /Refusing connections over the limits/);
          await spareCurl([
            "-u",
            "alice:wonder",
            "-X",
            "DELETE",
            `${API}/v1/sessions/${session.id}`,
          ]);
        },
      );

      await t.step("SIGTERM removes every rule", async () => {
        const log = await bed.stopDaemon();
        assertMatch(log, /Stopped; every forwarding rule removed/);
        const save = await must(["ip", "netns", "exec", bed.ns.proxy, "iptables-save"]);
        // Session rules carry their UUID; the chains and their two fixed rules stay (they match nothing).
        assertEquals(/xferproxy:[0-9a-f-]{36}:/.test(save), false);
      });

      await t.step(
        "HTTPS with a test certificate, from curl and from forward connect",
        async () => {
          // A test CA and a server certificate it signs (TLS clients refuse a CA certificate as the server's own).
          const openssl = (...args: string[]) => must(["openssl", ...args]);
          const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
          const d = bed.dir;
          await openssl(
            "req",
            "-x509",
            ...ec,
            "-keyout",
            `${d}/ca-key.pem`,
            "-out",
            `${d}/ca.pem`,
            "-days",
            "1",
            "-subj",
            "/CN=test CA",
          );
          await openssl(
            "req",
            "-new",
            ...ec,
            "-keyout",
            `${d}/key.pem`,
            "-out",
            `${d}/server.csr`,
            "-subj",
            "/CN=xferproxy-test",
          );
          await Deno.writeTextFile(
            `${d}/san.ext`,
            `subjectAltName=IP:${FIP.proxyIn}\nbasicConstraints=CA:FALSE\n`,
          );
          await openssl(
            "x509",
            "-req",
            "-in",
            `${d}/server.csr`,
            "-CA",
            `${d}/ca.pem`,
            "-CAkey",
            `${d}/ca-key.pem`,
            "-CAcreateserial",
            "-out",
            `${d}/cert.pem`,
            "-days",
            "1",
            "-extfile",
            `${d}/san.ext`,
          );
          await bed.startDaemon(forwardConfig(
            bed.dir,
            `<cert_file>${bed.dir}/cert.pem</cert_file><key_file>${bed.dir}/key.pem</key_file>`,
            "<enable_https>true</enable_https>",
          ));
          assertMatch(bed.daemonLog(), /Started on port\(s\) 9091,9092s/);
          const health = await curl(bed, [
            "--cacert",
            `${bed.dir}/ca.pem`,
            `https://${FIP.proxyIn}:9092/healthz`,
          ]);
          assertEquals(health.status, 200);
          const ssh = await bed.inNs(bed.ns.inside, [
            "ssh",
            ...bed.sshOptions(
              `${BINARY} forward connect --cacert ${bed.dir}/ca.pem --proxy dnats://alice@${FIP.proxyIn} %h %p`,
            ),
            `${OUT_USER}@${FIP.outside}`,
            "true",
          ], { env: { XFERPROXY_PROXY_PASS: "wonder", PATH: "/usr/bin:/bin" } });
          assertEquals(ssh.code, 0, ssh.stderr);
          const insecure = await curl(bed, [`https://${FIP.proxyIn}:9092/healthz`]);
          assertEquals(insecure.status, 0); // curl refuses the unknown certificate
        },
      );

      await t.step(
        "the documents' example (HTTP and HTTPS, no certificate) starts with a generated one, kept",
        async () => {
          const config = forwardConfig(bed.dir, "", "<enable_https>true</enable_https>");
          const certPath = `${bed.dir}/state/forward/https-selfsigned.crt`;
          const fingerprintOf = async () =>
            (await must(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", certPath]))
              .trim().replace(/^.*Fingerprint=/, "");
          // check config says what the daemon will do.
          await Deno.writeTextFile(bed.configPath, config);
          const checked = await run([BINARY, "check", "config", "--config", bed.configPath]);
          assertMatch(
            checked.stdout,
            /a self-signed certificate it generates in <state_directory>\/forward/,
          );
          const starts: string[] = [];
          for (const expected of ["Generated", "Using"]) {
            await bed.startDaemon(config);
            const log = bed.daemonLog();
            const said = [
              ...log.matchAll(/a self-signed HTTPS certificate (\S+) \(SHA-256 ([0-9A-F:]+)\)/g),
            ];
            // Said once per start, with the fingerprint openssl computes.
            assertEquals(said.length, 1, log);
            assertMatch(log, new RegExp(`${expected} a self-signed HTTPS certificate`));
            assertEquals([said[0]![1], said[0]![2]], [certPath, await fingerprintOf()]);
            starts.push(said[0]![2]!);
            assertEquals(
              (await curl(bed, ["-k", `https://${FIP.proxyIn}:9092/healthz`])).status,
              200,
            );
            await bed.stopDaemon();
          }
          assertEquals(starts[0], starts[1]);
          // Configured files win again (and the next step needs the test CA's certificate).
          await bed.startDaemon(forwardConfig(
            bed.dir,
            `<cert_file>${bed.dir}/cert.pem</cert_file><key_file>${bed.dir}/key.pem</key_file>`,
            "<enable_https>true</enable_https>",
          ));
          assertEquals(bed.daemonLog().includes("self-signed"), false);
          assertEquals((await Deno.stat(`${bed.dir}/state/forward`)).mode! & 0o777, 0o700);
          assertEquals(
            (await Deno.stat(`${bed.dir}/state/forward/https-selfsigned.key`)).mode! & 0o777,
            0o600,
          );
        },
      );

      await t.step("forward connect explains a refused session in one line", async () => {
        const result = await bed.inNs(bed.ns.inside, [
          BINARY,
          "forward",
          "connect",
          "--cacert",
          `${bed.dir}/ca.pem`,
          "--proxy",
          `dnats://alice:wonder@${FIP.proxyIn}`,
          "10.0.0.9",
          "22",
        ]);
        assertEquals(result.code, 255);
        assertIncludes(
          result.stderr,
          "xferproxy: the proxy refused the session (403): destination 10.0.0.9 is in 10.0.0.0/8",
        );
      });
    } finally {
      await bed.close();
    }
  },
});

Deno.test({
  name: "forward daemon refuses to start when <proxy><enabled> is false",
  ignore: !isRoot,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/a.conf`, "<server><enable_http>true</enable_http></server>");
      const result = await run([BINARY, "forward", "--config", `${dir}/a.conf`]);
      // A daemon that cannot start: Aspera Proxy's line and the reason, once.
      assertEquals(result.code, 1);
      assertEquals(
        result.stderr,
        "xferproxy: ERR Failed to initialize proxy service: The forward proxy is disabled: set <server><proxy><enabled>true</enabled> in the config\n",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "forward mode on nftables: TCP and UDP through one port, dnat list, a reload healed, a refused removal retried",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const bed = await createForwardBed();
    const config = forwardConfig(bed.dir, "", "<dnat_backend>nftables</dnat_backend>");
    let alive = true;
    const nft = (...args: string[]) => must(["ip", "netns", "exec", bed.ns.proxy, "nft", ...args]);
    const dnatList = () =>
      must([
        "ip",
        "netns",
        "exec",
        bed.ns.proxy,
        BINARY,
        "dnat",
        "list",
        "--config",
        bed.configPath,
      ]);
    const iperf = (port: number, udp: boolean) =>
      bed.inNs(bed.ns.inside, [
        "iperf3",
        "-c",
        FIP.proxyIn,
        "-p",
        String(port),
        ...(udp ? ["-u", "-b", "20M", "-l", "1400"] : []),
        "-t",
        "1",
        "-J",
      ]);
    try {
      await Deno.writeTextFile(bed.configPath, config);
      await addUser(bed, "alice", "wonder", "--allow", `${FIP.outside}/32`);
      await bed.startDaemon(config);
      const session = await allocate(bed, {
        destination: FIP.outside,
        ssh_port: 5201,
        udp_port: 5201,
      });
      const tcpKey = `${FIP.inside} . ${FIP.proxyIn} . ${session.port}`;
      // The session lives while it is kept alive (session_timeout 4 s), as forward connect does.
      const keepalives = (async () => {
        for (let i = 0; i < 120 && alive; i++) {
          await curl(bed, [
            "-u",
            "alice:wonder",
            "-X",
            "POST",
            `${API}/v1/sessions/${session.id}/keepalive`,
          ]);
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      })();

      await t.step("iperf3 TCP and UDP through the one allocated port", async () => {
        const tcp = await iperf(session.port, false);
        assertEquals(tcp.code, 0, tcp.stdout.slice(0, 500));
        assertOk(JSON.parse(tcp.stdout).end.sum_received.bytes > 100_000);
        const udp = await iperf(session.port, true);
        assertEquals(udp.code, 0, udp.stdout.slice(0, 500));
        assertOk(JSON.parse(udp.stdout).end.sum.packets > 100);
      });

      await t.step(
        "dnat list shows the forward session, recorded in the shared registry",
        async () => {
          assertMatch(
            await dnatList(),
            new RegExp(
              `^${session.id} owner \\d+ forward  ${FIP.inside}:\\* -> ${FIP.proxyIn}:${session.port} -> ${FIP.outside}:5201 \\(tcp -> ${FIP.outside}:5201\\)\\n$`,
            ),
          );
        },
      );

      await t.step("a firewall reload (nft flush ruleset) is healed within 2 s", async () => {
        await nft("flush", "ruleset");
        const flushed = Date.now();
        await waitFor(
          "the TCP element to come back",
          async () =>
            (await run(["ip", "netns", "exec", bed.ns.proxy, "nft", "list", "ruleset"])).stdout
              .includes(tcpKey),
          5_000,
        ).catch((error) => {
          throw new Error(`${error.message}\n${bed.daemonLog()}`);
        });
        const took = Date.now() - flushed;
        assertOk(took <= 2_000, `healed after ${took} ms`);
        const tcp = await iperf(session.port, false);
        assertEquals(tcp.code, 0, tcp.stdout.slice(0, 500));
        // The log line may trail the kernel change through the pipe.
        await waitFor(
          "the repair's log line",
          () =>
            Promise.resolve(
              bed.daemonLog().includes(`Re-asserted UDP forwarding of session ${session.id}`),
            ),
        );
      });

      await t.step(
        "a removal the kernel refuses stays known, is logged, and is retried",
        async () => {
          // Someone else's element under the session's key: nftables refuses the removal's transaction.
          const tampered = `${tcpKey} timeout 120s : ${FIP.outside} . 2222`;
          await must(["ip", "netns", "exec", bed.ns.proxy, "nft", "-f", "-"], {
            stdin: `delete element ip xferproxy dnat_tcp { ${tcpKey} }\n` +
              `add element ip xferproxy dnat_tcp { ${tampered} }\n`,
          });
          alive = false;
          await keepalives;
          const deleted = await curl(bed, [
            "-u",
            "alice:wonder",
            "-X",
            "DELETE",
            `${API}/v1/sessions/${session.id}`,
          ]);
          assertEquals(deleted.status, 204, deleted.body);
          assertMatch(
            bed.daemonLog(),
            new RegExp(`Removing the forwarding of session ${session.id} failed; retrying`),
          );
          await waitFor(
            "the retried removal to succeed",
            async () => (await dnatList()) === "no xferproxy DNAT sessions\n",
            10_000,
          );
          assertMatch(bed.daemonLog(), /Removed UDP forwarding between .* \(removal retried\)/);
          assertEquals(
            (await nft("list", "map", "ip", "xferproxy", "dnat_tcp")).includes(tcpKey),
            false,
          );
        },
      );

      await t.step("SIGTERM leaves no element behind", async () => {
        assertMatch(await bed.stopDaemon(), /Stopped; every forwarding rule removed/);
        const ruleset = await nft("list", "ruleset");
        assertEquals(/elements = /.test(ruleset), false, ruleset);
      });
    } finally {
      alive = false;
      await bed.close();
    }
  },
});
