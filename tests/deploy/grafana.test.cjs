// Checks of deploy/grafana/: the dashboard is well-formed (unique ids, a
// tidy grid, every panel on the `datasource` variable, every query on the
// `job` and `instance` variables), every query parses as PromQL (through
// `promtool check rules`), and the panels the issue asks for are there.
// That the metrics it uses exist and its queries return data is checked
// against a real Herald and Prometheus (observability_test.cc).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { test } = require("node:test");
const YAML = require("yaml");
const lib = require("./lib.cjs");

const dashboardFile = lib.repoPath("deploy", "grafana", "dashboards", "herald.json");
const dashboard = JSON.parse(lib.readText(dashboardFile));
const rows = dashboard.panels.filter((p) => p.type === "row");
const panels = dashboard.panels.flatMap((p) => (p.type === "row" ? p.panels || [] : [p]));
const queries = panels.flatMap((p) => (p.targets || []).map((t) => ({ panel: p.title, target: t })));
const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));

// Grafana's built-in variables a query may use.
const builtins = new Set(["__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"]);

function substitute(expr) {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m").replace(/\$\{?(\w+)\}?/g, ".+");
}

test("the dashboard is identified and provisioned", () => {
  assert.equal(dashboard.uid, "herald-overview");
  assert.equal(dashboard.title, "Herald");
  assert.ok(dashboard.schemaVersion >= 36, "a current schema version");
  assert.equal(dashboard.id, undefined, "no instance-specific id in a provisioned dashboard");
  const provider = lib.loadYaml(lib.repoPath("deploy", "grafana", "provisioning", "dashboards", "herald.yaml"));
  assert.equal(provider.apiVersion, 1);
  assert.ok(provider.providers.some((p) => p.type === "file"));
  const datasources = lib.loadYaml(lib.repoPath("deploy", "grafana", "provisioning", "datasources", "prometheus.yaml"));
  assert.ok(datasources.datasources.some((d) => d.type === "prometheus" && d.isDefault));
});

test("variables: a Prometheus data source, then job and instance from herald_build_info", () => {
  assert.equal(variables.get("datasource").type, "datasource");
  assert.equal(variables.get("datasource").query, "prometheus");
  assert.match(variables.get("job").definition, /^label_values\(herald_build_info, job\)$/);
  assert.match(variables.get("instance").definition, /^label_values\(herald_build_info\{job=~"\$job"\}, instance\)$/);
  for (const name of ["job", "instance"]) {
    assert.deepEqual(variables.get(name).datasource, { type: "prometheus", uid: "${datasource}" });
  }
});

test("panel ids are unique and the grid has no overlaps", () => {
  const all = [...rows, ...panels];
  const ids = all.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "duplicate panel ids");
  const cells = new Map();
  for (const panel of all) {
    const { x, y, w, h } = panel.gridPos;
    assert.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${panel.title}: gridPos out of the 24-column grid`);
    for (let row = y; row < y + h; row++) {
      for (let column = x; column < x + w; column++) {
        const key = `${row}:${column}`;
        assert.ok(!cells.has(key), `${panel.title} overlaps ${cells.get(key)}`);
        cells.set(key, panel.title);
      }
    }
  }
});

test("every panel queries the selected data source, job and instance", () => {
  for (const panel of panels) {
    assert.ok(panel.title && panel.description, `panel ${panel.id}: a title and a description`);
    assert.deepEqual(panel.datasource, { type: "prometheus", uid: "${datasource}" }, `${panel.title}: data source`);
    assert.ok((panel.targets || []).length > 0, `${panel.title}: no query`);
    const refIds = panel.targets.map((t) => t.refId);
    assert.equal(new Set(refIds).size, refIds.length, `${panel.title}: duplicate refIds`);
    assert.ok(panel.fieldConfig && panel.fieldConfig.defaults && panel.fieldConfig.defaults.unit, `${panel.title}: a unit`);
  }
  for (const { panel, target } of queries) {
    assert.deepEqual(target.datasource, { type: "prometheus", uid: "${datasource}" }, `${panel}: target data source`);
    assert.ok(target.expr, `${panel}: empty query`);
    for (const [, name] of target.expr.matchAll(/\$\{?(\w+)\}?/g)) {
      assert.ok(variables.has(name) || builtins.has(name), `${panel}: unknown variable $${name}`);
    }
    // Each selector of a Herald metric filters by the dashboard's job and instance.
    for (const [selector] of target.expr.matchAll(/\b(?:herald_|grpc_server_|up\b)[a-z0-9_]*\{[^}]*\}/g)) {
      assert.match(selector, /job=~"\$job"/, `${panel}: ${selector} ignores the job variable`);
      assert.match(selector, /instance=~"\$instance"/, `${panel}: ${selector} ignores the instance variable`);
    }
    assert.doesNotMatch(target.expr, /\b(?:herald_|grpc_server_)[a-z0-9_]*(?![a-z0-9_{])/, `${panel}: a metric without a selector`);
  }
});

test("every query parses as PromQL", (t) => {
  // promtool checks the expressions of recording rules offline.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-dashboard-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rulesFile = path.join(dir, "dashboard.rules.yaml");
  const expressions = [
    ...queries.map(({ target }) => target.expr),
    ...["job", "instance"].map((name) => /^label_values\((.*),\s*\w+\)$/.exec(variables.get(name).definition)[1]),
  ];
  const recording = expressions.map((expr, i) => ({ record: `dashboard:query_${i}`, expr: substitute(expr) }));
  fs.writeFileSync(rulesFile, YAML.stringify({ groups: [{ name: "dashboard", rules: recording }] }));
  lib.runOk("promtool", ["check", "rules", rulesFile]);
  // And promtool does object to a broken one.
  fs.writeFileSync(rulesFile, YAML.stringify({ groups: [{ name: "x", rules: [{ record: "x:y", expr: "sum(rate(x[5m])" }] }] }));
  assert.notEqual(lib.run("promtool", ["check", "rules", rulesFile]).status, 0);
});

test("the panels the issue asks for are there", () => {
  const uses = (metric) => queries.some(({ target }) => target.expr.includes(metric));
  const wanted = {
    "API rate": "grpc_server_started_total",
    "API errors": "grpc_server_handled_total",
    "API duration": "grpc_server_handling_seconds_bucket",
    "delivery success ratio": "herald_deliveries_total",
    "delivery latency": "herald_delivery_latency_seconds_bucket",
    "backlog": "herald_backlog_deliveries",
    "MQTT connection state": "herald_mqtt_connected",
    "MQTT reconnects": "herald_mqtt_reconnects_total",
    "command outcomes": "herald_commands_total",
    "command latency": "herald_command_duration_seconds_bucket",
    "database latency": "herald_db_query_duration_seconds_bucket",
  };
  for (const [what, metric] of Object.entries(wanted)) assert.ok(uses(metric), `no panel shows ${what} (${metric})`);
  const byQos = queries.filter(({ target }) => /herald_delivery_latency_seconds_bucket/.test(target.expr));
  assert.ok(byQos.every(({ target }) => /by \(qos, le\)/.test(target.expr)), "delivery latency by QoS");
  const success = queries.find(({ panel }) => panel === "Delivery success ratio by QoS");
  assert.ok(success && /sum by \(qos\)/.test(success.target.expr), "delivery success ratio by QoS");
});
