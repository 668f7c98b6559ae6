/**
 * The DNAT service's status endpoints on `<metrics_address>`: `GET /metrics`
 * (Prometheus text) and `GET /healthz` (200 "ok", or 503 and the reason in
 * one line, for a load balancer's health check). Read-only; nothing else.
 * @module
 */

import { PROMETHEUS_CONTENT_TYPE } from "../metrics/prometheus.ts";
import type { Health } from "./health.ts";

/** What the endpoints read. */
export interface StatusSource {
  metrics(): string;
  health(): Health;
}

const TEXT = "text/plain; charset=utf-8";

/** Answers one request. */
export function statusResponse(request: Request, source: StatusSource): Response {
  const path = new URL(request.url).pathname;
  if (path !== "/metrics" && path !== "/healthz") {
    return new Response("not found: use /metrics or /healthz\n", {
      status: 404,
      headers: { "content-type": TEXT },
    });
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("use GET\n", {
      status: 405,
      headers: { "content-type": TEXT, allow: "GET, HEAD" },
    });
  }
  if (path === "/metrics") {
    return new Response(source.metrics(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
  }
  const health = source.health();
  return new Response(`${health.line}\n`, {
    status: health.status,
    headers: { "content-type": TEXT, "cache-control": "no-store" },
  });
}
