// Checks of deploy/prometheus/: `promtool check rules` (with its linter) and
// `promtool test rules` pass; every alert has a severity, a summary, a
// description and a runbook that exists in docs/operations.md; every alert
// has unit tests in which it fires and stays quiet; the alerts the issue
// asks for exist; the compose Prometheus configuration is valid; and the
// Prometheus Operator copy of the rules is what the script renders.
"use strict";

const assert = require("node:assert/strict");
const { test } = require("node:test");
const lib = require("./lib.cjs");

const rulesFile = lib.repoPath("deploy", "prometheus", "herald.rules.yaml");
const testsFile = lib.repoPath("deploy", "prometheus", "herald.rules.test.yaml");
const rules = lib.loadYaml(rulesFile);
const alerts = rules.groups.flatMap((group) => group.rules.filter((rule) => rule.alert));

// GitHub's anchor of a Markdown heading: lower case, punctuation dropped,
// spaces to hyphens.
function slug(heading) {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

function anchors(markdown) {
  const result = new Set();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const match = !fenced && /^#{1,6}\s+(.*)$/.exec(line);
    if (match) result.add(slug(match[1]));
  }
  return result;
}

test("promtool check rules passes, lint included", () => {
  const out = lib.runOk("promtool", ["check", "rules", "--lint=all", "--lint-fatal", rulesFile]);
  assert.match(out, /SUCCESS: \d+ rules found/);
});

test("promtool test rules passes", () => {
  const out = lib.runOk("promtool", ["test", "rules", testsFile]);
  assert.match(out, /SUCCESS/);
});

test("promtool fails a rule unit test that expects the wrong thing", () => {
  const fs = require("node:fs");
  const os = require("node:os");
  const path = require("node:path");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-rules-"));
  try {
    fs.copyFileSync(rulesFile, path.join(dir, "herald.rules.yaml"));
    const broken = lib.readText(testsFile).replace("severity: critical", "severity: page");
    fs.writeFileSync(path.join(dir, "herald.rules.test.yaml"), broken);
    const result = lib.run("promtool", ["test", "rules", path.join(dir, "herald.rules.test.yaml")]);
    assert.notEqual(result.status, 0, "promtool passed a test with a wrong expected label");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the alerts the issue asks for exist", () => {
  const names = alerts.map((a) => a.alert);
  for (const wanted of ["HeraldDeliveryFailureRatioHigh", "HeraldBacklogGrowing", "HeraldMqttDisconnected",
                        "HeraldCommandTimeoutsHigh", "HeraldGrpcErrorRatioHigh", "HeraldApiLatencyHigh",
                        "HeraldDeliveryLatencyHigh"]) {
    assert.ok(names.includes(wanted), `missing alert ${wanted}`);
  }
  assert.equal(new Set(names).size, names.length, "alert names must be unique");
});

test("every alert has a severity, a summary, a description and a runbook in docs/operations.md", () => {
  const docAnchors = anchors(lib.readText(lib.repoPath("docs", "operations.md")));
  for (const alert of alerts) {
    assert.ok(["warning", "critical"].includes(alert.labels && alert.labels.severity), `${alert.alert}: severity warning or critical`);
    const annotations = alert.annotations || {};
    assert.ok(annotations.summary && annotations.description, `${alert.alert}: summary and description`);
    const expected = `docs/operations.md#${alert.alert.toLowerCase()}`;
    assert.equal(annotations.runbook_url, expected, `${alert.alert}: runbook_url`);
    assert.ok(docAnchors.has(alert.alert.toLowerCase()),
              `${alert.alert}: docs/operations.md has no section "${alert.alert}" (the runbook the alert links to)`);
    assert.match(alert.expr, /herald_|grpc_server_|up\{job="herald"\}/, `${alert.alert}: an expression over Herald's metrics`);
  }
});

test("every alert has unit tests in which it fires and in which it stays quiet", () => {
  const unitTests = lib.loadYaml(testsFile).tests;
  for (const alert of alerts) {
    const cases = unitTests.flatMap((t) => t.alert_rule_test || []).filter((c) => c.alertname === alert.alert);
    assert.ok(cases.some((c) => (c.exp_alerts || []).length > 0), `${alert.alert}: no unit test in which it fires`);
    assert.ok(cases.some((c) => (c.exp_alerts || []).length === 0), `${alert.alert}: no unit test in which it stays quiet`);
  }
});

test("the compose Prometheus configuration is valid", () => {
  lib.runOk("promtool", ["check", "config", lib.repoPath("deploy", "compose", "prometheus.yml")]);
});

test("the PrometheusRule is exactly what render-prometheusrule.sh writes", () => {
  const rendered = lib.runOk("bash", [lib.repoPath("deploy", "prometheus", "render-prometheusrule.sh"), "--stdout"]);
  const committed = lib.readText(lib.repoPath("deploy", "kubernetes", "base", "prometheusrule.yaml"));
  assert.ok(rendered === committed,
            "deploy/kubernetes/base/prometheusrule.yaml is stale: run deploy/prometheus/render-prometheusrule.sh");
});
