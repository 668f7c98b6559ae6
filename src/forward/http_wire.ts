/**
 * HTTP/1.1 request parsing and response framing for the forward daemon's
 * own server, pure: bytes in, a request head or a refusal out. One request
 * per connection (`Connection: close`), Content-Length bodies only: the API
 * needs nothing more, and every extra feature is something a flood can use.
 * @module
 */

/** A parsed request head. */
export interface RequestHead {
  readonly method: string;
  /** The request target: an origin-form path with optional query. */
  readonly target: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The body's length from Content-Length (0 without one). */
  readonly contentLength: number;
}

/** A request refused before the handler sees it. */
export interface Refusal {
  readonly status: 400 | 411 | 413 | 431 | 501 | 505;
  readonly message: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Where the head ends (index after CRLFCRLF), or -1. */
export function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

/** Parses the head (without the final CRLFCRLF); `maxBody` caps Content-Length. */
export function parseHead(text: string, maxBody: number): RequestHead | Refusal {
  const lines = text.split("\r\n");
  const [method, target, version, extra] = (lines[0] ?? "").split(" ");
  if (extra !== undefined || !method || !target || !version || !TOKEN.test(method)) {
    return { status: 400, message: "malformed request line" };
  }
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    return { status: 505, message: "only HTTP/1.0 and HTTP/1.1" };
  }
  if (!target.startsWith("/")) return { status: 400, message: "the target must be a path" };
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    // deno-lint-ignore no-control-regex
    if (colon <= 0 || !TOKEN.test(name) || /[\x00-\x08\x0a-\x1f\x7f]/.test(line)) {
      return { status: 400, message: "malformed header line" };
    }
    headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
  }
  if (headers.some(([name]) => name === "transfer-encoding")) {
    return { status: 501, message: "chunked bodies are not accepted; send Content-Length" };
  }
  const lengths = headers.filter(([name]) => name === "content-length").map(([, v]) => v);
  if (lengths.length > 1) return { status: 400, message: "more than one Content-Length" };
  const length = lengths[0];
  if (length !== undefined && !/^\d{1,9}$/.test(length)) {
    return { status: 400, message: "malformed Content-Length" };
  }
  const contentLength = length === undefined ? 0 : Number(length);
  if (contentLength > maxBody) return { status: 413, message: `body over ${maxBody} bytes` };
  return { method, target, headers, contentLength };
}

const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** The response head for a status, headers and a body of `length` bytes; always closes. */
export function responseHead(
  status: number,
  headers: Iterable<readonly [string, string]>,
  length: number,
): string {
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}`];
  for (const [name, value] of headers) {
    if (name === "content-length" || name === "connection" || name === "transfer-encoding") {
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  lines.push(`content-length: ${length}`, "connection: close", "", "");
  return lines.join("\r\n");
}
