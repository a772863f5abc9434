// Checks of deploy/kubernetes/: every kustomization (the base and each
// overlay) renders offline with `kubectl kustomize`, each rendered object
// matches the Kubernetes or prometheus-operator schema (strictly: unknown
// fields fail), and the objects agree with each other and with Herald
// itself: selectors and labels, ports and probes, shutdown timing, the
// secret files, and every --flag and HERALD_* variable against
// `herald --help`.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { describe, test } = require("node:test");
const lib = require("./lib.cjs");

const kubernetesDir = lib.repoPath("deploy", "kubernetes");
const kustomizations = [
  "base",
  ...fs.readdirSync(path.join(kubernetesDir, "overlays")).map((name) => `overlays/${name}`),
];

// The kinds every rendering holds, once each. No Secret: credentials are
// created out of band, so that an apply never overwrites them.
const expectedKinds = [
  "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job", "NetworkPolicy",
  "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor",
];

const rendered = new Map();
function render(kustomization) {
  if (!rendered.has(kustomization)) {
    rendered.set(kustomization, lib.kustomize(path.join(kubernetesDir, kustomization)));
  }
  return rendered.get(kustomization);
}

function only(objects, kind) {
  const matching = objects.filter((object) => object.kind === kind);
  assert.equal(matching.length, 1, `expected one ${kind}, found ${matching.length}`);
  return matching[0];
}

// True when every matchLabels pair is among `labels` (matchExpressions are
// not used by these manifests; their presence fails the check).
function selects(selector, labels) {
  assert.ok(selector, "missing selector");
  assert.equal(selector.matchExpressions, undefined, "matchExpressions are not checked here; use matchLabels");
  const pairs = Object.entries(selector.matchLabels || selector);
  assert.ok(pairs.length > 0, "an empty selector selects everything");
  return pairs.every(([key, value]) => labels && labels[key] === value);
}

function podLabels(workload) {
  return workload.spec.template.metadata.labels;
}

// The configuration a container runs with: its flags from args, and its
// HERALD_* variables from env and from envFrom ConfigMaps of the rendering.
function containerConfig(container, objects) {
  const variables = new Map();
  for (const source of container.envFrom || []) {
    assert.ok(source.configMapRef, `${container.name}: envFrom other than a ConfigMap`);
    const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === source.configMapRef.name);
    assert.ok(configMap, `${container.name}: envFrom names ConfigMap ${source.configMapRef.name}, which is not rendered`);
    for (const [key, value] of Object.entries(configMap.data || {})) variables.set(key, { value, from: configMap.metadata.name });
  }
  for (const variable of container.env || []) {
    if (variable.valueFrom && variable.valueFrom.configMapKeyRef) {
      const ref = variable.valueFrom.configMapKeyRef;
      const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === ref.name);
      assert.ok(configMap && configMap.data && ref.key in configMap.data,
                `${container.name}: ${variable.name} refers to ${ref.name}/${ref.key}, which is not rendered`);
      variables.set(variable.name, { value: configMap.data[ref.key], from: ref.name });
    } else {
      variables.set(variable.name, { value: variable.value, valueFrom: variable.valueFrom, from: "env" });
    }
  }
  const args = [...(container.command || []), ...(container.args || [])];
  const flags = lib.flagArguments(args);
  // The value Herald ends up with for a flag: the command line wins over the
  // environment, which wins over the default.
  const effective = (flag) => {
    const fromArgs = flags.filter((f) => f.name === flag);
    if (fromArgs.length > 0) return fromArgs[fromArgs.length - 1].value;
    const variable = variables.get(`HERALD_${flag.toUpperCase()}`);
    if (variable && variable.value !== undefined) return variable.value;
    return lib.flagDefault(flag);
  };
  return { args, flags, variables, effective };
}

function checkFlagsAndVariables(container, config) {
  const known = lib.heraldFlags();
  for (const { name } of config.flags) {
    assert.ok(known.has(name), `${container.name}: --${name} is not a flag of herald (herald --help)`);
  }
  for (const [variable, { from }] of config.variables) {
    if (!variable.startsWith("HERALD_")) continue;
    assert.ok(lib.flagOfVariable(variable),
              `${container.name}: ${variable} (from ${from}) is not the variable of any flag of herald`);
    const flag = lib.flagOfVariable(variable);
    assert.ok(!config.flags.some((f) => f.name === flag),
              `${container.name}: --${flag} is set both as an argument and as ${variable}; the argument would win silently`);
  }
  // Secrets never travel as plain configuration.
  for (const [variable, { from }] of config.variables) {
    if (from === "env") continue;
    assert.ok(!/PASSWORD|DATABASE_URL$|SECRET|TOKEN/.test(variable),
              `${container.name}: ${variable} comes from ConfigMap ${from}; credentials belong in the Secret, as files`);
  }
  for (const { name, value } of config.flags) {
    assert.ok(!/password$|^database_url$/.test(name) || value === null,
              `${container.name}: --${name}=... puts a credential on the command line; use the _file flag`);
  }
}

function checkContainerHardening(container) {
  const context = container.securityContext || {};
  assert.equal(context.allowPrivilegeEscalation, false, `${container.name}: allowPrivilegeEscalation must be false`);
  assert.equal(context.readOnlyRootFilesystem, true, `${container.name}: readOnlyRootFilesystem must be true`);
  assert.notEqual(context.privileged, true, `${container.name}: must not be privileged`);
  assert.ok(context.capabilities && (context.capabilities.drop || []).includes("ALL"),
            `${container.name}: capabilities must drop ALL`);
  assert.deepEqual(context.capabilities.add || [], [], `${container.name}: adds capabilities`);
  const resources = container.resources || {};
  for (const kind of ["requests", "limits"]) {
    for (const resource of ["cpu", "memory"]) {
      assert.ok(resources[kind] && resources[kind][resource] !== undefined,
                `${container.name}: resources.${kind}.${resource} is not set`);
    }
  }
  for (const resource of ["cpu", "memory"]) {
    assert.ok(quantity(resources.requests[resource]) <= quantity(resources.limits[resource]),
              `${container.name}: ${resource} request above its limit`);
  }
  const image = container.image || "";
  assert.match(image, /:[A-Za-z0-9_][A-Za-z0-9_.-]*$|@sha256:[0-9a-f]{64}$/, `${container.name}: image ${image} has no tag`);
  assert.doesNotMatch(image, /:latest$/, `${container.name}: image ${image} uses :latest`);
}

function checkPodHardening(name, pod) {
  const context = pod.securityContext || {};
  assert.equal(context.runAsNonRoot, true, `${name}: runAsNonRoot must be true`);
  assert.ok(Number.isInteger(context.runAsUser) && context.runAsUser > 0, `${name}: runAsUser must be a non-root uid`);
  assert.equal(context.seccompProfile && context.seccompProfile.type, "RuntimeDefault", `${name}: seccompProfile RuntimeDefault`);
  assert.equal(pod.automountServiceAccountToken, false, `${name}: Herald needs no service account token`);
  assert.notEqual(pod.hostNetwork, true, `${name}: hostNetwork`);
}

// "250m" -> 0.25, "2" -> 2, "512Mi" -> bytes.
function quantity(value) {
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(value));
  assert.ok(match, `not a quantity: ${value}`);
  const factor = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };
  return Number(match[1]) * (match[2] ? factor[match[2]] : 1);
}

// Each *_file flag names a file inside a mounted Secret volume, and that
// file is a key of the Secret (per the example) or a mapped item.
function checkSecretFiles(workloadName, pod, container, config, secretExample) {
  const fileFlags = ["database_url_file", "mqtt_password_file", "mqtt_key_password_file",
                     "mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file"];
  for (const flag of fileFlags) {
    const value = config.effective(flag);
    if (!value) continue;
    const mount = (container.volumeMounts || []).find((m) => value.startsWith(`${m.mountPath.replace(/\/$/, "")}/`));
    assert.ok(mount, `${workloadName}: --${flag}=${value} is not inside any mounted volume`);
    const volume = (pod.volumes || []).find((v) => v.name === mount.name);
    assert.ok(volume, `${workloadName}: volumeMount ${mount.name} has no volume`);
    const file = value.slice(mount.mountPath.replace(/\/$/, "").length + 1);
    if (volume.secret) {
      assert.equal(volume.secret.secretName, secretExample.metadata.name,
                   `${workloadName}: mounts Secret ${volume.secret.secretName}, the example documents ${secretExample.metadata.name}`);
      const items = volume.secret.items;
      const key = items ? (items.find((item) => item.path === file) || {}).key : file;
      assert.ok(key, `${workloadName}: --${flag} reads ${file}, which the Secret's items do not map`);
      assert.ok(key in (secretExample.stringData || secretExample.data || {}),
                `${workloadName}: --${flag} reads key ${key}, which deploy/kubernetes/secret.example.yaml does not document`);
      // The file must be readable by the pod's user: through fsGroup or its uid.
      const mode = volume.secret.defaultMode === undefined ? 0o644 : volume.secret.defaultMode;
      assert.ok((mode & 0o040) !== 0 && pod.securityContext.fsGroup !== undefined || (mode & 0o004) !== 0,
                `${workloadName}: the Secret's files (mode ${mode.toString(8)}) are not readable by the non-root user`);
      assert.equal(mode & 0o002, 0, `${workloadName}: Secret files must not be world-writable`);
    } else {
      assert.ok(volume.configMap, `${workloadName}: --${flag} reads from volume ${mount.name}, neither a Secret nor a ConfigMap`);
    }
  }
}

// Ports that the MQTT URIs of a configuration connect to.
function mqttPorts(uris) {
  const defaults = { "tcp:": 1883, "mqtt:": 1883, "ssl:": 8883, "mqtts:": 8883, "ws:": 80, "wss:": 443 };
  return String(uris).split(",").filter(Boolean).map((uri) => {
    const url = new URL(uri.trim());
    assert.ok(url.protocol in defaults, `unknown MQTT scheme in ${uri}`);
    return url.port ? Number(url.port) : defaults[url.protocol];
  });
}

function policyAllows(rules, port) {
  return (rules || []).some((rule) => (rule.ports || []).some((p) => p.port === port || p.port === undefined) ||
                                      rule.ports === undefined);
}

const secretExamplePath = path.join(kubernetesDir, "secret.example.yaml");

test("the strict validator rejects a field its schema does not know", () => {
  const deployment = {
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" },
    spec: { selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } },
      spec: { containers: [{ name: "c", image: "i:1", readinesProbe: { grpc: { port: 1 } } }] } } },
  };
  assert.throws(() => lib.validateObject(deployment), /readinesProbe/);
  delete deployment.spec.template.spec.containers[0].readinesProbe;
  deployment.spec.template.spec.containers[0].livenessProbe = { grpc: { port: "grpc" } };
  assert.throws(() => lib.validateObject(deployment), /port must be integer/);
  deployment.spec.template.spec.containers[0].livenessProbe = { grpc: { port: 50051, service: "" } };
  lib.validateObject(deployment);
});

test("the Secret example is a valid Secret with placeholder values only", () => {
  const secret = lib.loadYaml(secretExamplePath);
  lib.validateObject(secret);
  assert.equal(secret.kind, "Secret");
  const values = Object.entries(secret.stringData || {});
  assert.ok(values.length >= 2, "the example documents database_url and mqtt_password");
  assert.equal(secret.data, undefined, "the example uses stringData, readable placeholders");
  for (const [key, value] of values) {
    assert.match(value, /REPLACE_ME/, `${key} in the Secret example must be an obvious placeholder`);
  }
});

for (const kustomization of kustomizations) {
  describe(`kustomization ${kustomization}`, () => {
    const objects = () => render(kustomization);
    const secretExample = lib.loadYaml(secretExamplePath);

    test("renders offline with kubectl kustomize", () => {
      assert.ok(objects().length > 0);
    });

    test("every object matches its Kubernetes or prometheus-operator schema", () => {
      for (const object of objects()) lib.validateObject(object);
    });

    test("holds each kind once, no Secret, all labelled as Herald's", () => {
      const kinds = objects().map((o) => o.kind).sort();
      assert.deepEqual(kinds, [...expectedKinds].sort());
      for (const object of objects()) {
        const labels = object.metadata.labels || {};
        assert.equal(labels["app.kubernetes.io/name"], "herald", `${object.kind}/${object.metadata.name}: app.kubernetes.io/name`);
        assert.equal(labels["app.kubernetes.io/part-of"], "herald", `${object.kind}/${object.metadata.name}: app.kubernetes.io/part-of`);
      }
      if (kustomization !== "base") {
        for (const object of objects()) {
          assert.ok(object.metadata.namespace, `${object.kind}/${object.metadata.name} has no namespace in ${kustomization}`);
        }
        assert.equal(new Set(objects().map((o) => o.metadata.namespace)).size, 1, "objects spread over namespaces");
      }
    });

    test("the Deployment's pods: hardened, probed on the gRPC health service, shut down in time", () => {
      const deployment = only(objects(), "Deployment");
      const pod = deployment.spec.template.spec;
      assert.ok(selects(deployment.spec.selector, podLabels(deployment)), "the Deployment's selector does not match its pods");
      assert.equal(deployment.spec.replicas, undefined, "the HorizontalPodAutoscaler owns the replica count: no spec.replicas");
      checkPodHardening("Deployment", pod);
      assert.equal(pod.containers.length, 1);
      const container = pod.containers[0];
      checkContainerHardening(container);
      const config = containerConfig(container, objects());
      assert.equal(config.args[0], "serve", "the container runs `herald serve`");
      checkFlagsAndVariables(container, config);

      const grpcPort = lib.portOf(config.effective("grpc_address"));
      const metricsPort = lib.portOf(config.effective("metrics_address"));
      const ports = Object.fromEntries((container.ports || []).map((p) => [p.name, p.containerPort]));
      assert.equal(ports.grpc, grpcPort, "containerPort grpc differs from --grpc_address");
      assert.equal(ports.metrics, metricsPort, "containerPort metrics differs from --metrics_address");
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        if (probe === "startupProbe" && !container[probe]) continue;
        assert.ok(container[probe], `${probe} is missing`);
        assert.ok(container[probe].grpc, `${probe} must be a native gRPC probe`);
        assert.equal(container[probe].grpc.port, grpcPort, `${probe} probes port ${container[probe].grpc.port}, Herald serves gRPC on ${grpcPort}`);
        // The health entries Herald reports (service/main.cc): "" follows the
        // database (readiness); "herald.liveness" only the process, so that
        // an outage elsewhere never restarts the pods.
        const wanted = probe === "readinessProbe" ? "" : "herald.liveness";
        assert.equal(container[probe].grpc.service, wanted,
                     `${probe} asks for service "${container[probe].grpc.service}"; use "${wanted}"`);
      }

      // The preStop sleep lets endpoints drop the pod before SIGTERM; the
      // grace period must cover it and Herald's --shutdown_grace.
      const preStop = container.lifecycle && container.lifecycle.preStop;
      assert.ok(preStop && preStop.exec, "a preStop hook lets endpoints drain before SIGTERM");
      const [sleep, seconds] = preStop.exec.command;
      assert.equal(sleep, "sleep");
      const preStopSeconds = Number(seconds);
      assert.ok(preStopSeconds >= 3, "preStop sleep of at least 3 s");
      const shutdownGrace = lib.durationSeconds(config.effective("shutdown_grace"));
      const grace = pod.terminationGracePeriodSeconds;
      assert.ok(grace > preStopSeconds + shutdownGrace,
                `terminationGracePeriodSeconds ${grace} must exceed the preStop sleep ${preStopSeconds} + --shutdown_grace ${shutdownGrace}`);

      // Each replica needs its own MQTT client id.
      const clientId = config.effective("mqtt_client_id");
      assert.ok(clientId === "" || clientId.includes("$("),
                `--mqtt_client_id=${clientId} would be shared by every replica; leave it empty or derive it from the pod name`);
      if (clientId.includes("$(")) {
        const variable = /\$\(([A-Z_]+)\)/.exec(clientId)[1];
        const env = (container.env || []).find((e) => e.name === variable);
        assert.ok(env && env.valueFrom && env.valueFrom.fieldRef && env.valueFrom.fieldRef.fieldPath === "metadata.name",
                  `--mqtt_client_id uses $(${variable}), which is not the pod name from the downward API`);
      }

      checkSecretFiles("Deployment", pod, container, config, secretExample);
      // A read-only root: anything that writes needs a volume.
      assert.ok((container.volumeMounts || []).some((m) => m.mountPath === "/tmp"), "a writable /tmp (emptyDir)");
    });

    test("the migrations Job runs `herald migrate` with the same image and hardening", () => {
      const job = only(objects(), "Job");
      const deployment = only(objects(), "Deployment");
      const pod = job.spec.template.spec;
      checkPodHardening("Job", pod);
      assert.ok(["Never", "OnFailure"].includes(pod.restartPolicy));
      assert.ok(job.spec.backoffLimit >= 1, "retries while the database comes up");
      assert.ok(job.spec.activeDeadlineSeconds > 0, "a deadline, so that a stuck migration fails visibly");
      assert.equal(pod.containers.length, 1);
      const container = pod.containers[0];
      checkContainerHardening(container);
      const config = containerConfig(container, objects());
      assert.equal(config.args[0], "migrate");
      checkFlagsAndVariables(container, config);
      assert.ok(config.effective("database_url_file"), "the Job reads the database URL from the Secret");
      checkSecretFiles("Job", pod, container, config, secretExample);
      assert.equal(container.image, deployment.spec.template.spec.containers[0].image,
                   "the Job must migrate with the image the Deployment runs");
      // The migration pods are not Herald servers.
      const service = only(objects(), "Service");
      assert.ok(!selects(service.spec.selector, podLabels(job)), "the Service would send calls to migration pods");
      const pdb = only(objects(), "PodDisruptionBudget");
      assert.ok(!selects(pdb.spec.selector, podLabels(job)), "the PodDisruptionBudget counts migration pods");
      // A ConfigMap reference would change the Job's (immutable) template on every config change.
      assert.ok(!(container.envFrom || []).length, "the Job takes its settings from arguments, not a hashed ConfigMap");
    });

    test("the Service selects the Deployment's pods and its ports reach named container ports", () => {
      const service = only(objects(), "Service");
      const deployment = only(objects(), "Deployment");
      assert.ok(selects(service.spec.selector, podLabels(deployment)), "the Service's selector does not match the Deployment's pods");
      const containerPorts = deployment.spec.template.spec.containers[0].ports;
      const names = service.spec.ports.map((p) => p.name).sort();
      assert.deepEqual(names, ["grpc", "metrics"]);
      for (const port of service.spec.ports) {
        const target = containerPorts.find((p) => p.name === port.targetPort || p.containerPort === port.targetPort);
        assert.ok(target, `Service port ${port.name} targets ${port.targetPort}, which no container port is`);
        assert.equal(target.name, port.name, `Service port ${port.name} reaches container port ${target.name}`);
      }
      assert.equal(service.spec.ports.find((p) => p.name === "grpc").appProtocol, "kubernetes.io/h2c");
    });

    test("the PodDisruptionBudget and the HorizontalPodAutoscaler fit the Deployment", () => {
      const deployment = only(objects(), "Deployment");
      const pdb = only(objects(), "PodDisruptionBudget");
      const hpa = only(objects(), "HorizontalPodAutoscaler");
      assert.ok(selects(pdb.spec.selector, podLabels(deployment)), "the PodDisruptionBudget does not select the Deployment's pods");
      assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
      assert.ok(hpa.spec.minReplicas >= 2, "at least two replicas, so that a drain never stops delivery");
      assert.ok(hpa.spec.maxReplicas >= hpa.spec.minReplicas);
      if (pdb.spec.minAvailable !== undefined) {
        assert.ok(pdb.spec.minAvailable < hpa.spec.minReplicas, "minAvailable would block every drain");
      } else {
        assert.ok(pdb.spec.maxUnavailable >= 1, "maxUnavailable must allow a drain");
      }
      // CPU utilisation needs CPU requests.
      if ((hpa.spec.metrics || []).some((m) => m.resource && m.resource.name === "cpu")) {
        assert.ok(deployment.spec.template.spec.containers.every((c) => c.resources.requests.cpu));
      }
    });

    test("the ServiceMonitor scrapes the Service's metrics port, as job `herald`", () => {
      const monitor = only(objects(), "ServiceMonitor");
      const service = only(objects(), "Service");
      assert.ok(selects(monitor.spec.selector, service.metadata.labels), "the ServiceMonitor does not select the Service");
      assert.equal(monitor.spec.jobLabel, undefined, "the job label must stay the Service's name");
      assert.equal(service.metadata.name, "herald", "the alerts expect job=\"herald\" (the Service's name)");
      for (const endpoint of monitor.spec.endpoints) {
        assert.ok(service.spec.ports.some((p) => p.name === endpoint.port), `endpoint port ${endpoint.port} is not a Service port`);
        assert.equal(endpoint.path || "/metrics", "/metrics");
        assert.ok(lib.durationSeconds(endpoint.scrapeTimeout || "10s") <= lib.durationSeconds(endpoint.interval || "30s"));
      }
    });

    test("the PrometheusRule holds exactly the groups of deploy/prometheus/herald.rules.yaml", () => {
      const rule = only(objects(), "PrometheusRule");
      const rules = lib.loadYaml(lib.repoPath("deploy", "prometheus", "herald.rules.yaml"));
      assert.deepEqual(rule.spec.groups, rules.groups,
                       "deploy/kubernetes/base/prometheusrule.yaml is stale: run deploy/prometheus/render-prometheusrule.sh");
      if (kustomization !== "base") {
        const monitorLabels = only(objects(), "ServiceMonitor").metadata.labels;
        for (const key of Object.keys(monitorLabels)) {
          assert.equal(rule.metadata.labels[key], monitorLabels[key],
                       `the PrometheusRule and the ServiceMonitor differ in label ${key}: one Prometheus would select only one of them`);
        }
      }
    });

    test("the NetworkPolicy lets in calls and scrapes, and out DNS, PostgreSQL and the brokers", () => {
      const policy = only(objects(), "NetworkPolicy");
      const deployment = only(objects(), "Deployment");
      const job = only(objects(), "Job");
      assert.ok(selects(policy.spec.podSelector, podLabels(deployment)), "the NetworkPolicy does not apply to the Deployment's pods");
      assert.ok(selects(policy.spec.podSelector, podLabels(job)), "the NetworkPolicy does not apply to the migration pods");
      assert.deepEqual([...policy.spec.policyTypes].sort(), ["Egress", "Ingress"]);
      const config = containerConfig(deployment.spec.template.spec.containers[0], objects());
      assert.ok(policyAllows(policy.spec.ingress, lib.portOf(config.effective("grpc_address"))), "gRPC calls are not let in");
      assert.ok(policyAllows(policy.spec.ingress, lib.portOf(config.effective("metrics_address"))), "scrapes are not let in");
      assert.ok(policyAllows(policy.spec.egress, 53), "DNS is not let out");
      const databaseUrl = lib.loadYaml(secretExamplePath).stringData.database_url;
      const databasePort = Number(new URL(databaseUrl).port || 5432);
      assert.ok(policyAllows(policy.spec.egress, databasePort), `PostgreSQL (${databasePort}) is not let out`);
      for (const port of mqttPorts(config.effective("mqtt_uri"))) {
        assert.ok(policyAllows(policy.spec.egress, port), `the broker port ${port} of --mqtt_uri is not let out`);
      }
    });
  });
}
