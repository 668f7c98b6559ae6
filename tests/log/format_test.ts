import { assertEquals } from "../_assert.ts";
import type { LogRecord } from "@logtape/logtape";
import { clientText, formatRecord, levelFor, oneLine } from "../../src/log/format.ts";
import { buildSinks, type LogOutputs } from "../../src/log/mod.ts";

function record(
  level: LogRecord["level"],
  message: unknown[],
  properties: Record<string, unknown> = {},
): LogRecord {
  return {
    category: ["xferproxy"],
    level,
    message,
    rawMessage: "",
    timestamp: 0,
    properties,
  } as LogRecord;
}

Deno.test("formatRecord() keeps Aspera Proxy's wording and appends fields", () => {
  assertEquals(
    formatRecord(
      record("info", ["Received connection request from ", "198.18.1.2", ""], {
        session: "3a9f",
        user: "bear",
      }),
    ),
    "LOG Received connection request from 198.18.1.2 session=3a9f user=bear",
  );
  assertEquals(
    formatRecord(record("error", ["Failed to initialize proxy service"])),
    "ERR Failed to initialize proxy service",
  );
  assertEquals(
    formatRecord(record("warning", ["x"], { reason: "a b", n: 3, skip: undefined })),
    `WARN x reason="a b" n=3`,
  );
});

Deno.test("formatRecord() cannot be made to forge a second log line", () => {
  const line = formatRecord(
    record("info", ["user ", "evil\nLOG Connection closed (EOF)", ""], { cmd: "a\rb" }),
  );
  assertEquals(line.includes("\n") || line.includes("\r"), false);
  assertEquals(line, `LOG user evil\\x0aLOG Connection closed (EOF) cmd="a\\rb"`);
  assertEquals(oneLine("a\u0000b\u007f"), "a\\x00b\\x7f");
});

Deno.test("clientText() quotes what a client chose when it could pass for a field", () => {
  // A client's command, refused: it must not plant user=… or session=… before the real fields.
  assertEquals(
    formatRecord(
      record("error", ["Refused command ", clientText("scp -t /x user=carol session=1"), ""], {
        user: "bear",
      }),
    ),
    `ERR Refused command "scp -t /x user=carol session=1" user=bear`,
  );
  assertEquals(clientText('x a="b c"'), `"x a=\\"b c\\""`);
  // Without one it reads as the client wrote it.
  assertEquals(clientText("scp -t /in"), "scp -t /in");
});

Deno.test("oneLine() escapes C1 controls, NEL and the Unicode line separators too", () => {
  assertEquals(
    oneLine("a\u0085LOG x\u2028LOG y\u2029LOG z\u0080\u009bc\u00a0é"),
    "a\\x85LOG x\\u2028LOG y\\u2029LOG z\\x80\\x9bc\u00a0é",
  );
});

Deno.test("oneLine() escapes every bidirectional control, which would reorder what is read", async (t) => {
  const controls: Array<[string, string]> = [
    ["\u061c", "ALM"],
    ["\u200e", "LRM"],
    ["\u200f", "RLM"],
    ["\u202a", "LRE"],
    ["\u202b", "RLE"],
    ["\u202c", "PDF"],
    ["\u202d", "LRO"],
    ["\u202e", "RLO"],
    ["\u2066", "LRI"],
    ["\u2067", "RLI"],
    ["\u2068", "FSI"],
    ["\u2069", "PDI"],
  ];
  for (const [c, name] of controls) {
    await t.step(name, () => {
      const escaped = `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
      assertEquals(oneLine(`a${c}b`), `a${escaped}b`);
    });
  }
  await t.step("a user name that reverses the rest of the line", () => {
    // Shown raw, a viewer would display: "... user=bear request=txt.exe" (RLO reverses it).
    const line = formatRecord(
      record("info", ["Received connection request from ", "198.18.1.2", ""], {
        user: "bear\u202eexe.txt",
        request: "scp -t /in",
      }),
    );
    assertEquals(
      line,
      `LOG Received connection request from 198.18.1.2 user=bear\\u202eexe.txt request="scp -t /in"`,
    );
  });
  await t.step("letters of right-to-left scripts stay as they are", () => {
    assertEquals(oneLine("שלום مرحبا"), "שלום مرحبا");
  });
});

Deno.test("levelFor() maps log_level 0/1/2 to info/debug/trace", () => {
  assertEquals([levelFor(0), levelFor(1), levelFor(2)], ["info", "debug", "trace"]);
});

Deno.test("buildSinks() writes file lines with time and pid, syslog with a severity", () => {
  const lines: string[] = [];
  const syslog: Array<[number, string]> = [];
  const outputs: LogOutputs = {
    appendFile: (line) => void lines.push(line),
    syslog: (severity, line) => void syslog.push([severity, line]),
    now: () => new Date("2026-11-21T01:02:03.000Z"),
    pid: 4242,
  };
  const sinks = buildSinks(outputs);
  assertEquals(Object.keys(sinks), ["file", "syslog"]);
  sinks.file!(record("info", ["Connection closed (EOF)"]));
  sinks.syslog!(record("error", ["boom"]));
  sinks.syslog!(record("debug", ["detail"]));
  assertEquals(lines, ["2026-11-21T01:02:03.000Z xferproxy[4242]: LOG Connection closed (EOF)"]);
  assertEquals(syslog, [[3, "ERR boom"], [7, "DBG detail"]]);
});

Deno.test("buildSinks() adds no stderr sink unless asked (reverse mode never is)", () => {
  assertEquals(Object.keys(buildSinks({ now: () => new Date(0), pid: 1 })), []);
  const seen: string[] = [];
  const sinks = buildSinks({ stderr: (l) => void seen.push(l), now: () => new Date(0), pid: 1 });
  sinks.stderr!(record("info", ["proxy service ready (port range 5000-10000)"]));
  assertEquals(seen, ["xferproxy: LOG proxy service ready (port range 5000-10000)"]);
});

Deno.test("formatRecord() does not repeat values the message template already shows", () => {
  const rec = {
    ...record("info", ["Established SSH connection with server ", "198.18.2.2:22", ""], {
      server: "198.18.2.2:22",
      user: "bear",
    }),
    rawMessage: "Established SSH connection with server {server}",
  } as LogRecord;
  assertEquals(
    formatRecord(rec),
    "LOG Established SSH connection with server 198.18.2.2:22 user=bear",
  );
});
