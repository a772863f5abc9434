// Shared helpers of the deploy checks (tests/deploy/*.test.cjs): where the
// source tree and the binaries are, YAML loading, Herald's flags as its
// --help lists them, durations, and strict validation of Kubernetes objects
// against the schemas of npm's kubernetes-models.
//
// The checks run under node's test runner with NODE_PATH pointing at the
// node_modules that tests/deploy/npm-install.sh installed in the build tree:
//
//   NODE_PATH=build/deploy-node/node_modules HERALD_BINARY=build/service/herald \
//     node --test-reporter=spec tests/deploy/kubernetes.test.cjs
"use strict";

const assert = require("node:assert/strict");
const childProcess = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const YAML = require("yaml");

// The source tree: $HERALD_SOURCE_DIR, else the one holding this file.
const sourceDir = process.env.HERALD_SOURCE_DIR || path.resolve(__dirname, "..", "..");

function repoPath(...parts) {
  return path.join(sourceDir, ...parts);
}

function readText(file) {
  return fs.readFileSync(file, "utf8");
}

// Every document of a YAML stream, as plain objects. Parse errors and
// warnings (duplicate keys included) fail: a manifest must be clean YAML.
function parseYamlDocuments(text, what) {
  const documents = YAML.parseAllDocuments(text, { uniqueKeys: true });
  const result = [];
  for (const document of documents) {
    const problems = [...document.errors, ...document.warnings];
    if (problems.length > 0) {
      throw new Error(`${what}: ${problems.map((p) => p.message).join("; ")}`);
    }
    const value = document.toJS({ maxAliasCount: 0 });
    if (value !== null && value !== undefined) result.push(value);
  }
  return result;
}

function loadYaml(file) {
  const documents = parseYamlDocuments(readText(file), path.relative(sourceDir, file));
  assert.equal(documents.length, 1, `${file}: expected exactly one YAML document`);
  return documents[0];
}

// Runs a program to completion; returns {status, stdout, stderr}. A program
// that cannot be started fails the check with a message naming it.
function run(program, args, options = {}) {
  const result = childProcess.spawnSync(program, args, {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
  if (result.error) {
    throw new Error(`cannot run ${program}: ${result.error.message}` +
                    (result.error.code === "ENOENT" ? " (is it installed? scripts/install-deps.sh)" : ""));
  }
  return result;
}

// Like run(), but a non-zero exit fails with the program's output.
function runOk(program, args, options = {}) {
  const result = run(program, args, options);
  if (result.status !== 0) {
    throw new Error(`${program} ${args.join(" ")} exited ${result.status}:\n${result.stdout}${result.stderr}`);
  }
  return result.stdout;
}

function heraldBinary() {
  const binary = process.env.HERALD_BINARY;
  assert.ok(binary, "HERALD_BINARY must name the herald binary (CTest sets it)");
  assert.ok(fs.existsSync(binary), `HERALD_BINARY=${binary} does not exist: build the herald target`);
  return binary;
}

// Herald's flags, from `herald --help` (which exits 1, as absl's --help does):
// a Map from flag name to its help text, e.g. "grpc_address" -> "Address ...
// Env HERALD_GRPC_ADDRESS.); default: "0.0.0.0:50051";".
let cachedFlags = null;
function heraldFlags() {
  if (cachedFlags) return cachedFlags;
  const result = run(heraldBinary(), ["--help"]);
  const help = result.stdout + result.stderr;
  const flags = new Map();
  // Each flag starts a line "    --name (description...); default: ...;",
  // the description wrapped over several lines.
  const entries = help.split(/\n(?=\s{4}--[a-z0-9_]+ \()/);
  for (const entry of entries) {
    const match = /^\s{4}--([a-z0-9_]+) \(([\s\S]*)$/.exec(entry);
    if (match) flags.set(match[1], match[2].replace(/\s+/g, " "));
  }
  assert.ok(flags.size >= 20, `could not read the flags from herald --help:\n${help}`);
  cachedFlags = flags;
  return flags;
}

// The default of a flag as --help prints it, without quotes.
function flagDefault(name) {
  const text = heraldFlags().get(name);
  assert.ok(text !== undefined, `herald has no flag --${name}`);
  const match = /\); default: (?:"((?:[^"\\]|\\.)*)"|([^;]*));/.exec(text);
  assert.ok(match, `no default in the help of --${name}: ${text}`);
  return match[1] !== undefined ? match[1] : match[2];
}

// HERALD_GRPC_ADDRESS -> grpc_address, or null when the variable is not
// the environment form of one of Herald's flags.
function flagOfVariable(variable) {
  if (!variable.startsWith("HERALD_")) return null;
  const flag = variable.slice("HERALD_".length).toLowerCase();
  return heraldFlags().has(flag) ? flag : null;
}

// `--name=value` / `--name` arguments -> [{name, value}] (value null when
// absent). Other arguments (the command) are skipped.
function flagArguments(args) {
  const flags = [];
  for (const arg of args || []) {
    const match = /^--([^=]+)(?:=(.*))?$/s.exec(String(arg));
    if (match) flags.push({ name: match[1], value: match[2] === undefined ? null : match[2] });
  }
  return flags;
}

// "20s", "1m30s", "250ms", "1h" (absl/Go durations) -> seconds.
function durationSeconds(text) {
  const units = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6, ns: 1e-9 };
  const pattern = /(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (const match of String(text).matchAll(pattern)) {
    total += Number(match[1]) * units[match[2]];
    consumed += match[0].length;
  }
  assert.ok(consumed > 0 && consumed === String(text).length, `not a duration: ${text}`);
  return total;
}

// "HOST:PORT" -> PORT as a number.
function portOf(address) {
  const match = /:(\d+)$/.exec(String(address));
  assert.ok(match, `not HOST:PORT: ${address}`);
  return Number(match[1]);
}

// --- Kubernetes schemas -----------------------------------------------------

// The kubernetes-models module of an apiVersion: "apps/v1" ->
// "kubernetes-models/apps/v1", "v1" -> "kubernetes-models/v1",
// "monitoring.coreos.com/v1" -> the prometheus-operator package.
function modelModule(apiVersion) {
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  }
  return `kubernetes-models/${apiVersion}`;
}

function modelClass(object) {
  const { apiVersion, kind } = object;
  assert.ok(apiVersion && kind, `an object without apiVersion or kind: ${JSON.stringify(object).slice(0, 200)}`);
  let module;
  try {
    module = require(modelModule(apiVersion));
  } catch (error) {
    throw new Error(`no schema for apiVersion ${apiVersion} (${kind}): ${error.message}`);
  }
  const model = module[kind];
  assert.ok(model, `no schema for ${kind} in ${apiVersion}`);
  return model;
}

// Wraps `value` so that every property the schema validator reads is
// recorded in `read` (as "/path/key"), and every object it enumerates (a
// map such as labels, whose keys are free) in `enumerated`.
function recordReads(value, pointer, read, enumerated) {
  if (value === null || typeof value !== "object") return value;
  return new Proxy(value, {
    get(target, key, receiver) {
      const result = Reflect.get(target, key, receiver);
      if (typeof key !== "string") return result;
      read.add(`${pointer}/${key}`);
      return recordReads(result, `${pointer}/${key}`, read, enumerated);
    },
    has(target, key) {
      if (typeof key === "string") read.add(`${pointer}/${key}`);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      enumerated.add(pointer);
      return Reflect.ownKeys(target);
    },
  });
}

function collectUnread(value, pointer, read, enumerated, unknown) {
  if (value === null || typeof value !== "object") return;
  for (const [key, child] of Object.entries(value)) {
    const childPointer = `${pointer}/${key}`;
    if (!Array.isArray(value) && !enumerated.has(pointer) && !read.has(childPointer)) {
      unknown.push(childPointer);
    }
    collectUnread(child, childPointer, read, enumerated, unknown);
  }
}

// Validates one object against its schema. The schemas of kubernetes-models
// accept unknown fields (as the API server's non-strict decoding does), so
// this also fails on every field the schema does not know: a misspelt
// `readinesProbe` is an error here, not a probe silently missing in the
// cluster.
function validateObject(object) {
  const model = modelClass(object);
  const name = `${object.kind}/${object.metadata && object.metadata.name}`;
  const read = new Set();
  const enumerated = new Set();
  try {
    model.prototype.validate.call(recordReads(object, "", read, enumerated));
  } catch (error) {
    throw new Error(`${name} does not match its schema: ${error.message}`);
  }
  const unknown = [];
  collectUnread(object, "", read, enumerated, unknown);
  assert.deepEqual(unknown, [], `${name} has fields its schema does not know: ${unknown.join(", ")}`);
}

// --- Kustomize --------------------------------------------------------------

// `kubectl kustomize DIR`, offline. Requires a kubectl whose embedded
// kustomize is v4 or newer (labels, patches with targets).
function kustomize(dir) {
  const version = run("kubectl", ["version", "--client", "-o", "json"]);
  if (version.status === 0) {
    const info = JSON.parse(version.stdout);
    const kustomizeVersion = info.kustomizeVersion || "";
    const major = Number((/^v?(\d+)/.exec(kustomizeVersion) || [])[1]);
    assert.ok(major >= 4,
              `kubectl embeds kustomize ${kustomizeVersion || "(unknown)"}; the manifests need v4 or newer`);
  }
  const text = runOk("kubectl", ["kustomize", dir]);
  return parseYamlDocuments(text, `kubectl kustomize ${path.relative(sourceDir, dir)}`);
}

module.exports = {
  collectUnread,
  durationSeconds,
  flagArguments,
  flagDefault,
  flagOfVariable,
  heraldBinary,
  heraldFlags,
  kustomize,
  loadYaml,
  parseYamlDocuments,
  portOf,
  readText,
  recordReads,
  repoPath,
  run,
  runOk,
  sourceDir,
  validateObject,
};
