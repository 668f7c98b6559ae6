/**
 * The log lines the Aspera documents quote: docs/configuration.md says for
 * each when xferproxy writes it, and the code holds the wording it claims.
 */
import { assertEquals } from "../_assert.ts";

const ROOT = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFileSync(new URL(path, ROOT));

/** Lines quoted in the Aspera Proxy documents (shared/seeds), and the source file that writes each. */
const QUOTED: Array<[string, string | undefined]> = [
  ["LOG proxy service ready (port range 5000-10000)", "src/forward/daemon.ts"],
  ["LOG Started on port(s) 9091,9092s", "src/forward/daemon.ts"],
  ["ERR Failed to initialize proxy service", "src/errors.ts"],
  ["LOG Received connection request from 10.0.31.133", "src/reverse/session.ts"],
  ["LOG Established SSH connection with server 10.0.30.6:22", undefined],
  ["LOG Setup UDP forwarding between 10.0.31.133:60953 and 10.0.30.6:33001", "src/dnat/install.ts"],
  ["LOG Connection closed (EOF)", undefined],
];

Deno.test("docs/configuration.md says when each line the Aspera documents quote is written", () => {
  const docs = read("docs/configuration.md");
  const table = docs.slice(docs.indexOf("### Log lines the Aspera documents quote"));
  for (const [line, source] of QUOTED) {
    const row = table.split("\n").find((r) => r.startsWith(`| \`${line}\``));
    assertEquals(row !== undefined, true, `no row for ${line}`);
    // A line written as such names no substitute; one that is not says so.
    assertEquals(row!.includes("not written as such"), source === undefined, line);
    if (source) {
      // The wording up to the first value, as the code writes it.
      const words = line.replace(/^(LOG|ERR) /, "").replace(
        / \(port range.*| from .*| on port.*| between .*/,
        "",
      );
      assertEquals(read(source).includes(words), true, `${source} does not write "${words}"`);
    }
  }
});
