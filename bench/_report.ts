/**
 * Benchmark results: rows of candidate against a same-run baseline, extra
 * measurements, and the markdown and JSON written to bench/results.*.
 * @module
 */
// deno-lint-ignore-file no-console

/** One comparison row. */
export interface Row {
  section: string;
  metric: string;
  unit: string;
  candidate: number;
  baseline: number;
  baselineName: string;
  /** candidate / baseline. */
  ratio: number;
  note?: string;
}

/** Everything a run measured. */
export interface Report {
  readonly rows: Row[];
  readonly extra: Record<string, unknown>;
  /**
   * Records a row and prints it. The ratio is candidate / baseline unless given: the median of
   * ratios paired in time, where the host's speed drifts between the two medians' streams.
   */
  add(row: Omit<Row, "ratio"> & { ratio?: number }): void;
}

/** A fresh, empty report. */
export function createReport(): Report {
  const rows: Row[] = [];
  return {
    rows,
    extra: {},
    add(row) {
      const full = {
        ...row,
        ratio: Number(
          (row.ratio ?? (row.baseline === 0 ? 0 : row.candidate / row.baseline)).toFixed(3),
        ),
      };
      rows.push(full);
      console.log(
        `  ${row.section} / ${row.metric}: ${row.candidate.toFixed(2)} vs ${row.baselineName} ${
          row.baseline.toFixed(2)
        } ${row.unit} → ${full.ratio}${row.note ? ` (${row.note})` : ""}`,
      );
    },
  };
}

/** The middle value. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The p-th percentile (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** bench/results.md. */
export function markdown(
  report: Report,
  info: Record<string, string>,
  run: { started: Date; seconds: number; rounds: number; scpRounds: number },
): string {
  return [
    "# Benchmark results",
    "",
    `Run ${run.started.toISOString()} in ${
      run.seconds.toFixed(0)
    } s on ${info.cores} cores; ${run.rounds} rounds per pair (${run.scpRounds} for scp throughput), the order rotated each round; medians.`,
    `Versions: ${info.xferproxy}; kernel ${info.kernel}; ${info.iptables}; ${info.nftables}; ${info.openssh}; ${info.python}.`,
    "Ratios are candidate / baseline from the same run: above 1 means more (throughput) or slower (latency, memory, cost). Rows whose baseline is a target compare against that target.",
    "",
    "| Section | Metric | xferproxy | Baseline | Ratio | Note |",
    "| --- | --- | --- | --- | --- | --- |",
    ...report.rows.map((r) =>
      `| ${r.section} | ${r.metric} | ${r.candidate.toFixed(2)} ${r.unit} | ${r.baselineName}: ${
        r.baseline.toFixed(2)
      } ${r.unit} | ${r.ratio} | ${r.note ?? ""} |`
    ),
    "",
    "Extra measurements:",
    "",
    "```json",
    JSON.stringify(report.extra, null, 2),
    "```",
    "",
    "Reproduce: `make bench` (as root). `BENCH_ROUNDS`, `BENCH_SCP_MB`, `BENCH_SESSIONS`, `BENCH_LATENCY_RUNS` and `BENCH_CHURN_SECONDS` shorten a run.",
    "",
  ].join("\n");
}
