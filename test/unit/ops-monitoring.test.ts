// The Grafana dashboard and Prometheus alert rules in ops/: they load, and every metric they name
// is one the API (/metrics) or the worker (WORKER_METRICS_PORT) exposes, so a renamed series
// breaks this test rather than an operator's dashboard. promtool checks the rules when installed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Metrics } from "../../src/observability/metrics.js";
import { WorkerMetrics } from "../../src/observability/worker-metrics.js";

const RULES = new URL("../../ops/prometheus/datahus-rules.yml", import.meta.url).pathname;
const DASHBOARD = new URL("../../ops/grafana/datahus-dashboard.json", import.meta.url).pathname;

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string };
}

// Written as JSON, which is YAML too: Prometheus reads it, and no YAML parser is needed here.
const rules = JSON.parse(readFileSync(RULES, "utf8")) as { groups: { name: string; rules: Rule[] }[] };
const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
  panels: { title: string; targets: { expr: string }[] }[];
};

/** Every series name the two processes expose, histograms with their _bucket, _count and _sum. */
async function exposedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const registry of [new Metrics(async () => []).registry, new WorkerMetrics().registry]) {
    for (const metric of await registry.getMetricsAsJSON()) {
      names.add(metric.name);
      if (String(metric.type) === "histogram")
        for (const s of ["_bucket", "_count", "_sum"]) names.add(metric.name + s);
    }
  }
  return names;
}

const named = (expr: string) => expr.match(/\bdatahus_[a-z0-9_]+/g) ?? [];

const hasPromtool = (() => {
  try {
    execFileSync("promtool", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("Prometheus alert rules", () => {
  const all = rules.groups.flatMap((g) => g.rules);

  it("are alerting rules with a severity, a summary and a sane `for`", () => {
    expect(rules.groups.length).toBeGreaterThan(0);
    for (const rule of all) {
      expect(rule.alert).toMatch(/^Datahus[A-Za-z]+$/);
      expect(["warning", "critical"]).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length).toBeGreaterThan(0);
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/);
    }
    expect(new Set(all.map((r) => r.alert)).size).toBe(all.length);
  });

  it("name only metrics the processes expose", async () => {
    const exposed = await exposedNames();
    const used = all.flatMap((r) => named(r.expr));
    expect(used.length).toBeGreaterThan(5);
    expect(used.filter((name) => !exposed.has(name))).toEqual([]);
  });

  it.skipIf(!hasPromtool)("pass promtool check rules", () => {
    expect(() => execFileSync("promtool", ["check", "rules", RULES], { stdio: "pipe" })).not.toThrow();
  });
});

describe("Grafana dashboard", () => {
  it("has panels with a query each, naming only metrics the processes expose", async () => {
    const exposed = await exposedNames();
    expect(dashboard.panels.length).toBeGreaterThan(5);
    const used = dashboard.panels.flatMap((p) => {
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      return p.targets.flatMap((t) => named(t.expr));
    });
    expect(used.filter((name) => !exposed.has(name))).toEqual([]);
    // The worker's run, row, delivery and queue series all have a panel.
    for (const name of [
      "datahus_pipeline_runs_total",
      "datahus_pipeline_rows_total",
      "datahus_delivery_attempts_total",
      "datahus_queue_jobs",
    ]) {
      expect(used).toContain(name);
    }
  });

  it.skipIf(!hasPromtool)("has queries promtool parses (checked as recording rules)", () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const file = join(mkdtempSync(join(tmpdir(), "dashboard-")), "queries.yml");
    const record = exprs.map((expr, i) => ({ record: `datahus:panel_query_${i}`, expr }));
    writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules: record }] }));
    expect(() => execFileSync("promtool", ["check", "rules", file], { stdio: "pipe" })).not.toThrow();
  });
});
