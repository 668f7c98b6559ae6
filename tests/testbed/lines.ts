/** Reading a child's output by text, not by chunk: a pipe may split a line across reads. */

/**
 * Reads until the text seen so far contains `marker` and returns that text; throws `why()` at the
 * stream's end, or after `timeoutMs`.
 */
export async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  marker: string,
  timeoutMs: number,
  why: () => string | Promise<string>,
): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), timeoutMs));
  let text = "";
  try {
    while (!text.includes(marker)) {
      const chunk = await Promise.race([reader.read(), deadline]);
      if (chunk === "timeout") throw new Error(`no "${marker.trim()}" within ${timeoutMs} ms`);
      if (chunk.done) throw new Error(await why());
      text += chunk.value;
    }
  } finally {
    clearTimeout(timer);
  }
  return text;
}
