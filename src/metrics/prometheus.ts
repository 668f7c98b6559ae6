/**
 * A small metrics registry that renders the Prometheus text format (0.0.4):
 * counters, gauges and histograms with labels. The DNAT service and the
 * forward daemon each keep one; nothing here does I/O.
 * @module
 */

/** Label names to values. */
export type Labels = Readonly<Record<string, string>>;

/** What a metric family is. */
export type MetricType = "counter" | "gauge" | "histogram";

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  render(lines: string[]): void;
}

/** A value that only goes up. */
export interface Counter {
  inc(labels?: Labels, by?: number): void;
  /** The current value for these labels (0 when never counted). */
  value(labels?: Labels): number;
}

/** A value that goes up and down, or is read when rendered. */
export interface Gauge {
  set(labels: Labels, value: number): void;
  /** Drops every labelled value (before setting the current ones). */
  reset(): void;
  value(labels?: Labels): number;
}

/** Observations counted into buckets. */
export interface Histogram {
  observe(labels: Labels, value: number): void;
  /** How many observations these labels have. */
  count(labels?: Labels): number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the text format writes it: backslash, quote and newline escaped. */
export function escapeLabelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** HELP text as the text format writes it: backslash and newline escaped. */
function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** A number as the text format writes it. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function labelText(names: readonly string[], labels: Labels, extra?: [string, string]): string {
  const pairs = names.map((n) => `${n}="${escapeLabelValue(labels[n] ?? "")}"`);
  if (extra) pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

function keyOf(names: readonly string[], labels: Labels): string {
  for (const given of Object.keys(labels)) {
    if (!names.includes(given)) throw new Error(`unknown label ${given}`);
  }
  return JSON.stringify(names.map((n) => labels[n] ?? ""));
}

function labelsOf(names: readonly string[], key: string): Labels {
  const values = JSON.parse(key) as string[];
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? ""]));
}

/** Default buckets for durations in seconds, from 5 ms to 10 s. */
export const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** The lines of a counter's or gauge's series; an unlabelled one shows 0 before its first value. */
function renderValues(
  lines: string[],
  name: string,
  labelNames: readonly string[],
  values: ReadonlyMap<string, number>,
): void {
  for (const [key, v] of values) {
    lines.push(`${name}${labelText(labelNames, labelsOf(labelNames, key))} ${formatValue(v)}`);
  }
  if (values.size === 0 && labelNames.length === 0) lines.push(`${name} 0`);
}

/** The families of one process, rendered in the order they were made. */
export class MetricsRegistry {
  readonly #families: Family[] = [];

  #add(family: Family): void {
    if (!NAME.test(family.name)) throw new Error(`bad metric name ${family.name}`);
    for (const l of family.labelNames) {
      if (!LABEL.test(l) || l === "le") throw new Error(`bad label name ${l}`);
    }
    if (this.#families.some((f) => f.name === family.name)) {
      throw new Error(`metric ${family.name} made twice`);
    }
    this.#families.push(family);
  }

  /** A counter; by convention its name ends in `_total`. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    if (!name.endsWith("_total")) throw new Error(`counter ${name} must end in _total`);
    const values = new Map<string, number>();
    this.#add({
      name,
      help,
      type: "counter",
      labelNames,
      render: (lines) => renderValues(lines, name, labelNames, values),
    });
    return {
      inc(labels = {}, by = 1) {
        if (!(by >= 0)) throw new Error(`counter ${name} cannot go down (${by})`);
        const key = keyOf(labelNames, labels);
        values.set(key, (values.get(key) ?? 0) + by);
      },
      value: (labels = {}) => values.get(keyOf(labelNames, labels)) ?? 0,
    };
  }

  /** A gauge. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    const values = new Map<string, number>();
    this.#add({
      name,
      help,
      type: "gauge",
      labelNames,
      render: (lines) => renderValues(lines, name, labelNames, values),
    });
    return {
      set(labels, value) {
        values.set(keyOf(labelNames, labels), value);
      },
      reset: () => values.clear(),
      value: (labels = {}) => values.get(keyOf(labelNames, labels)) ?? 0,
    };
  }

  /** A histogram with cumulative buckets `le`, `_sum` and `_count`. */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = SECONDS_BUCKETS,
  ): Histogram {
    const bounds = [...buckets].sort((a, b) => a - b);
    const series = new Map<string, { counts: number[]; sum: number; count: number }>();
    this.#add({
      name,
      help,
      type: "histogram",
      labelNames,
      render(lines) {
        const all = series.size || labelNames.length ? series : new Map([[
          keyOf(labelNames, {}),
          { counts: bounds.map(() => 0), sum: 0, count: 0 },
        ]]);
        for (const [key, s] of all) {
          const labels = labelsOf(labelNames, key);
          bounds.forEach((b, i) => {
            const le = labelText(labelNames, labels, ["le", formatValue(b)]);
            lines.push(`${name}_bucket${le} ${s.counts[i]}`);
          });
          lines.push(`${name}_bucket${labelText(labelNames, labels, ["le", "+Inf"])} ${s.count}`);
          lines.push(`${name}_sum${labelText(labelNames, labels)} ${formatValue(s.sum)}`);
          lines.push(`${name}_count${labelText(labelNames, labels)} ${s.count}`);
        }
      },
    });
    return {
      observe(labels, value) {
        const key = keyOf(labelNames, labels);
        let s = series.get(key);
        if (!s) series.set(key, s = { counts: bounds.map(() => 0), sum: 0, count: 0 });
        bounds.forEach((b, i) => {
          if (value <= b) s.counts[i]! += 1;
        });
        s.sum += value;
        s.count += 1;
      },
      count: (labels = {}) => series.get(keyOf(labelNames, labels))?.count ?? 0,
    };
  }

  /** Every family in the text format, ending with a newline. */
  render(): string {
    const lines: string[] = [];
    for (const f of this.#families) {
      lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
      f.render(lines);
    }
    return lines.join("\n") + "\n";
  }
}

/** The content type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
