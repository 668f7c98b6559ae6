import { assertEquals, assertThrows } from "../_assert.ts";
import { escapeLabelValue, MetricsRegistry } from "../../src/metrics/prometheus.ts";

Deno.test("render() writes HELP, TYPE and each labelled value in the text format", () => {
  const r = new MetricsRegistry();
  const started = r.counter("x_started_total", "Sessions started.", ["rule"]);
  const active = r.gauge("x_active", "Sessions now.");
  started.inc({ rule: "1" });
  started.inc({ rule: "1" });
  started.inc({ rule: "2" }, 3);
  active.set({}, 4);
  assertEquals(
    r.render(),
    [
      "# HELP x_started_total Sessions started.",
      "# TYPE x_started_total counter",
      'x_started_total{rule="1"} 2',
      'x_started_total{rule="2"} 3',
      "# HELP x_active Sessions now.",
      "# TYPE x_active gauge",
      "x_active 4",
      "",
    ].join("\n"),
  );
});

Deno.test("an unlabelled counter shows 0 before its first count; a labelled one shows nothing", () => {
  const r = new MetricsRegistry();
  r.counter("a_total", "A.");
  r.counter("b_total", "B.", ["reason"]);
  const text = r.render();
  assertEquals(text.includes("\na_total 0\n"), true, text);
  assertEquals(text.includes("\nb_total"), false, text);
});

Deno.test("histograms count cumulatively per bucket, with +Inf, _sum and _count", () => {
  const r = new MetricsRegistry();
  const h = r.histogram("x_seconds", "Durations.", [], [0.1, 1]);
  h.observe({}, 0.05);
  h.observe({}, 0.5);
  h.observe({}, 3);
  assertEquals(h.count(), 3);
  assertEquals(r.render().split("\n").slice(2, 7), [
    'x_seconds_bucket{le="0.1"} 1',
    'x_seconds_bucket{le="1"} 2',
    'x_seconds_bucket{le="+Inf"} 3',
    "x_seconds_sum 3.55",
    "x_seconds_count 3",
  ]);
});

Deno.test("an unlabelled histogram renders zero buckets before its first observation", () => {
  const r = new MetricsRegistry();
  r.histogram("x_seconds", "Durations.", [], [1]);
  assertEquals(r.render().includes('x_seconds_bucket{le="+Inf"} 0'), true);
});

Deno.test("label values are escaped: a hostile rule or host name cannot add a line", () => {
  assertEquals(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  const r = new MetricsRegistry();
  r.counter("x_total", "X.", ["host"]).inc({ host: 'h"}\nx_total 99' });
  const lines = r.render().trim().split("\n");
  assertEquals(lines.length, 3);
  assertEquals(lines[2], 'x_total{host="h\\"}\\nx_total 99"} 1');
});

Deno.test("misuse is refused: bad names, twice the same name, unknown labels, a counter going down", () => {
  const r = new MetricsRegistry();
  assertThrows(() => r.counter("x", "no _total"), Error, "must end in _total");
  assertThrows(() => r.gauge("1x", "bad name"), Error, "bad metric name");
  assertThrows(() => r.gauge("x", "bad label", ["le"]), Error, "bad label name");
  r.gauge("g", "G.");
  assertThrows(() => r.gauge("g", "again"), Error, "made twice");
  const c = r.counter("c_total", "C.", ["rule"]);
  assertThrows(() => c.inc({ host: "x" }), Error, "unknown label");
  assertThrows(() => c.inc({ rule: "1" }, -1), Error, "cannot go down");
});

Deno.test("gauge reset() drops the labelled values before the current ones are set", () => {
  const r = new MetricsRegistry();
  const g = r.gauge("active", "A.", ["rule"]);
  g.set({ rule: "1" }, 2);
  g.reset();
  g.set({ rule: "2" }, 1);
  assertEquals(g.value({ rule: "1" }), 0);
  assertEquals(r.render().includes('active{rule="1"}'), false);
  assertEquals(r.render().includes('active{rule="2"} 1'), true);
});
