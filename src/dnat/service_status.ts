/**
 * What the DNAT service shows a monitoring system and a load balancer: it
 * wraps the backend to count netfilter changes and judge whether netfilter
 * answers, keeps the metrics, and answers `/metrics` and `/healthz` from
 * them and from the service's own state.
 * @module
 */

import { VERSION } from "../version.ts";
import { type Health, judgeHealth, netfilterWatch } from "./health.ts";
import { observedBackend } from "./observed_backend.ts";
import { type ServiceMetrics, serviceMetrics } from "./service_metrics.ts";
import type { StatusSource } from "./status_api.ts";
import type { DnatBackend } from "./types.ts";
import type { DrainMark } from "./drain.ts";

/** The service's state that health depends on, read at each request. */
export interface ServiceState {
  readonly listening: boolean;
  configError(): string | undefined;
  /** The drain mark; undefined when the node is not drained. */
  drained(): DrainMark | undefined;
}

/** The service's observation: the backend to use, its metrics, and the endpoints' source. */
export interface ServiceObservation {
  readonly backend: DnatBackend;
  readonly metrics: ServiceMetrics;
  readonly status: StatusSource;
  /** When netfilter last answered a call (ms since the epoch). */
  netfilterAnsweredAt(): number;
  health(): Health;
}

/** Observes `backend` for the service started at `now()`; `state` is read on each request. */
export function observeService(
  backend: DnatBackend,
  now: () => number,
  state: () => ServiceState,
): ServiceObservation {
  const metrics = serviceMetrics({ version: VERSION, backend: backend.name }, now());
  const watch = netfilterWatch(now);
  const observed = observedBackend(backend, (op, mutating, error) => {
    watch.observe(op, mutating, error);
    if (mutating) metrics.netfilter(op, error === undefined);
  });
  const health = (): Health => {
    const s = state();
    const configError = s.configError();
    const netfilterError = watch.error();
    const mark = s.drained();
    return judgeHealth({
      listening: s.listening,
      ...(configError ? { configError } : {}),
      ...(netfilterError ? { netfilterError } : {}),
      ...(mark ? { drainedSince: mark.since } : {}),
      ...(mark?.reason ? { drainReason: mark.reason } : {}),
    });
  };
  return {
    backend: observed,
    metrics,
    status: { metrics: () => metrics.registry.render(), health },
    netfilterAnsweredAt: () => watch.answeredAt(),
    health,
  };
}
