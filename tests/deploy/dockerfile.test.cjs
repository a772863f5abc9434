// Checks of the Dockerfile, without a Docker engine: npm's dockerfilelint,
// the image's shape (multi-stage, non-root, entrypoint, ports), the runtime
// packages against the shared libraries that the built binaries really
// load, and the build context (.dockerignore + COPY) against a CMake
// configure of exactly those files, whose findings (libraries, programs,
// package configurations) must come from packages the build stage installs.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { test } = require("node:test");
const lib = require("./lib.cjs");

const dockerfilePath = lib.repoPath("Dockerfile");

// Instructions as [{stage, instruction, args}], continuation lines joined,
// comments dropped. `stage` counts FROMs from 0.
function parseDockerfile(text) {
  const instructions = [];
  let stage = -1;
  let pending = "";
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trimEnd();
    if (!pending && (line.trim() === "" || line.trim().startsWith("#"))) continue;
    // Within a continued instruction, Docker skips comments and empty lines.
    if (pending && (line.trim().startsWith("#") || line.trim() === "")) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    const match = /^(\w+)\s+([\s\S]*)$/.exec(full);
    assert.ok(match, `cannot parse Dockerfile line: ${full}`);
    const instruction = match[1].toUpperCase();
    if (instruction === "FROM") stage += 1;
    instructions.push({ stage, instruction, args: match[2].replace(/\s+/g, " ").trim() });
  }
  return instructions;
}

const instructions = parseDockerfile(lib.readText(dockerfilePath));
const stageCount = Math.max(...instructions.map((i) => i.stage)) + 1;
const finalStage = stageCount - 1;
const inStage = (stage, name) => instructions.filter((i) => i.stage === stage && i.instruction === name);

// Packages of every `apt-get install` in a stage.
function aptPackages(stage) {
  const packages = [];
  for (const { args } of inStage(stage, "RUN")) {
    for (const command of args.split(/&&|;/)) {
      const words = command.trim().split(/\s+/).filter((w) => !/^[A-Z_]+=/.test(w));
      if (words[0] !== "apt-get" || words[1] !== "install") continue;
      packages.push(...words.slice(2).filter((w) => !w.startsWith("-")));
    }
  }
  return packages;
}

function execForm(args) {
  const parsed = JSON.parse(args);
  assert.ok(Array.isArray(parsed), `not the exec (JSON) form: ${args}`);
  return parsed;
}

// The packages that own each file, with one `dpkg -S` for all of them:
// Map(file -> [packages]); empty for a file no package owns. /lib is /usr/lib
// on Debian 12 (merged /usr) and dpkg may know either name.
function owners(files) {
  const variants = (file) => {
    const real = fs.realpathSync(file);
    return [...new Set([file, real, real.replace(/^\/usr\//, "/"), file.replace(/^\/lib/, "/usr/lib"),
                        real.replace(/^\/lib/, "/usr/lib")])];
  };
  const all = [...new Set(files.flatMap(variants))];
  const byPath = new Map();
  // Exit status 1 when some path is unknown: the others are still listed.
  const output = all.length > 0 ? lib.run("dpkg", ["-S", ...all]).stdout : "";
  for (const line of output.split("\n")) {
    if (!line.includes(": ") || line.startsWith("diversion")) continue;
    const at = line.indexOf(": ");
    const packages = line.slice(0, at).split(",").map((p) => p.trim().split(":")[0]);
    byPath.set(line.slice(at + 2).trim(), packages);
  }
  return new Map(files.map((file) => [file, [...new Set(variants(file).flatMap((v) => byPath.get(v) || []))]]));
}

// The Debian packages that own the shared libraries a binary needs directly.
function neededPackages(binary) {
  const dynamic = lib.runOk("readelf", ["-d", binary]);
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  assert.ok(needed.length > 0, `${binary} needs no shared library? (readelf -d)`);
  const resolved = new Map();
  for (const line of lib.runOk("ldd", [binary]).split("\n")) {
    const match = /^\s*(\S+) => (\S+)/.exec(line);
    if (match) resolved.set(match[1], match[2]);
  }
  const files = needed.map((name) => {
    const file = resolved.get(name);
    assert.ok(file && file !== "not", `ldd cannot find ${name} of ${binary}`);
    return file;
  });
  const packages = new Set();
  for (const [file, fileOwners] of owners(files)) {
    assert.equal(fileOwners.length, 1, `${file} (needed by ${binary}) should belong to one Debian package: ${fileOwners}`);
    packages.add(fileOwners[0]);
  }
  return packages;
}

// Every installed package's dependencies (Depends and Pre-Depends, every
// alternative) and the virtual packages it provides, from dpkg's database.
function installedPackages() {
  const text = lib.runOk("dpkg-query", ["-W", "-f=${Package}\t${Depends}, ${Pre-Depends}\t${Provides}\n"]);
  const depends = new Map();
  const providers = new Map();
  const names = (field) => field.split(/[,|]/).map((d) => d.trim().split(/[\s:(]/)[0]).filter(Boolean);
  for (const line of text.split("\n").filter(Boolean)) {
    const [name, dependencies, provides] = line.split("\t");
    depends.set(name, names(dependencies));
    for (const virtual of names(provides || "")) providers.set(virtual, [...(providers.get(virtual) || []), name]);
  }
  return { depends, providers };
}

// The packages `roots` bring in, themselves included.
function closure(roots, { depends, providers }) {
  const seen = new Set();
  const queue = [...roots];
  while (queue.length > 0) {
    const name = queue.pop();
    if (seen.has(name)) continue;
    seen.add(name);
    queue.push(...(depends.get(name) || []), ...(providers.get(name) || []));
  }
  return seen;
}

// What CMake found while configuring (libraries, programs, package
// configuration directories), from a CMakeCache.txt: [{variable, file}].
function cmakeFindings(cacheFile) {
  const findings = [];
  for (const line of lib.readText(cacheFile).split("\n")) {
    const match = /^([A-Za-z0-9_.+-]+):(PATH|FILEPATH)=(\/.+)$/.exec(line);
    if (!match || match[1].startsWith("CMAKE_") || /INCLUDE_DIRS?$/.test(match[1])) continue;
    if (!fs.existsSync(match[3]) || !match[3].startsWith("/usr/")) continue;
    findings.push({ variable: match[1], file: match[3] });
  }
  return findings;
}

// .dockerignore: Docker's semantics for the patterns used here: a path is
// excluded when the last pattern matching it or one of its parents
// excludes it; `*` matches within one path element, `**` across elements.
function dockerIgnore() {
  const file = lib.repoPath(".dockerignore");
  const patterns = lib.readText(file).split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    .map((line) => {
      const negated = line.startsWith("!");
      const pattern = path.posix.normalize((negated ? line.slice(1) : line).replace(/^\/+/, "")).replace(/\/$/, "");
      const regex = new RegExp(`^${pattern.split("/").map((part) => (part === "**" ? ".*"
        : part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]"))).join("/")}$`);
      return { negated, regex };
    });
  return (relative) => {
    const prefixes = relative.split("/").map((_, i, parts) => parts.slice(0, i + 1).join("/"));
    let excluded = false;
    for (const { negated, regex } of patterns) {
      if (prefixes.some((prefix) => regex.test(prefix))) excluded = !negated;
    }
    return excluded;
  };
}

function copyContext(from, to, excluded, relative = "") {
  const source = path.join(from, relative);
  if (fs.statSync(source).isDirectory()) {
    for (const entry of fs.readdirSync(source)) {
      copyContext(from, to, excluded, relative ? `${relative}/${entry}` : entry);
    }
  } else if (!excluded(relative)) {
    fs.mkdirSync(path.dirname(path.join(to, relative)), { recursive: true });
    fs.copyFileSync(source, path.join(to, relative));
  }
}

test("dockerfilelint finds nothing", () => {
  const bin = path.join(path.dirname(require.resolve("dockerfilelint/package.json")), "bin", "dockerfilelint");
  const result = lib.run(process.execPath, [bin, "--json", dockerfilePath]);
  const report = JSON.parse(result.stdout);
  const issues = report.files.flatMap((f) => f.issues.map((i) => `line ${i.line}: ${i.title}: ${i.description}`));
  assert.deepEqual(issues, []);
  assert.equal(result.status, 0);
  // The linter must be able to object at all.
  const bad = lib.run(process.execPath, [bin, "--json", "FROM debian\nRUN apt-get install curl\n"]);
  assert.notEqual(bad.status, 0, "dockerfilelint accepted a Dockerfile with an untagged base and a blocking apt-get");
});

test("builds in debian:12 and runs in debian:12-slim as a non-root user", () => {
  assert.equal(stageCount, 2, "a build stage and a runtime stage");
  assert.match(inStage(0, "FROM")[0].args, /^debian:12 AS build$/i);
  assert.equal(inStage(finalStage, "FROM")[0].args, "debian:12-slim");
  const users = inStage(finalStage, "USER");
  assert.equal(users.length, 1);
  const [uid, gid] = users[0].args.split(":");
  assert.match(uid, /^\d+$/, "a numeric USER, so that runAsNonRoot can verify it");
  assert.ok(Number(uid) > 0 && Number(gid) > 0, "not root");
  // The USER comes after every RUN (which may need root).
  const lastRun = instructions.lastIndexOf(inStage(finalStage, "RUN").slice(-1)[0]);
  assert.ok(instructions.indexOf(users[0]) > lastRun, "USER must follow the last RUN");
  // The Kubernetes manifests run as this user.
  const deployment = lib.loadYaml(lib.repoPath("deploy", "kubernetes", "base", "deployment.yaml"));
  assert.equal(deployment.spec.template.spec.securityContext.runAsUser, Number(uid), "the Deployment's runAsUser differs from the image's USER");
});

test("herald is the entrypoint, serve the default command, the gRPC and metrics ports exposed", () => {
  assert.deepEqual(execForm(inStage(finalStage, "ENTRYPOINT")[0].args), ["herald"]);
  assert.deepEqual(execForm(inStage(finalStage, "CMD")[0].args), ["serve"]);
  const exposed = inStage(finalStage, "EXPOSE").flatMap((i) => i.args.split(" ")).map((p) => Number(p.replace(/\/tcp$/, "")));
  assert.deepEqual(exposed.sort(), [lib.portOf(lib.flagDefault("grpc_address")), lib.portOf(lib.flagDefault("metrics_address"))].sort());
  const copied = inStage(finalStage, "COPY").map((i) => i.args).join(" ");
  assert.match(copied, /--from=build .*\/herald\b/);
  assert.match(copied, /\/heraldctl\b/);
});

test("the build stage configures without tests, with Ninja, and builds herald and heraldctl", () => {
  const runs = inStage(0, "RUN").map((i) => i.args).join(" && ");
  assert.match(runs, /cmake -S \S+ -B \S+ -G Ninja/);
  assert.match(runs, /-DHERALD_BUILD_TESTS=OFF/);
  assert.match(runs, /-DCMAKE_BUILD_TYPE=Release/);
  assert.match(runs, /cmake --build \S+ --target herald heraldctl/);
});

test("apt-get runs non-interactively, without recommends, and leaves no lists behind", () => {
  for (const { stage, args } of instructions.filter((i) => i.instruction === "RUN" && /apt-get install/.test(i.args))) {
    assert.match(args, /apt-get update/, `stage ${stage}: apt-get install without apt-get update in the same layer`);
    assert.match(args, /apt-get install -y --no-install-recommends/, `stage ${stage}: apt-get install -y --no-install-recommends`);
    assert.match(args, /rm -rf \/var\/lib\/apt\/lists\/\*/, `stage ${stage}: remove the apt lists in the same layer`);
  }
});

test("the build stage installs the build tools", () => {
  const build = new Set(aptPackages(0));
  for (const tool of ["g++", "cmake", "ninja-build", "pkg-config", "protobuf-compiler", "protobuf-compiler-grpc"]) {
    assert.ok(build.has(tool), `the build stage needs ${tool}`);
  }
  assert.ok(![...build].some((p) => /gtest|gmock|postgresql$|mosquitto$/.test(p)), "test-only packages in the image build");
});

test("the runtime stage installs exactly the packages of the libraries herald and heraldctl load", () => {
  const binaries = [lib.heraldBinary(), process.env.HERALDCTL_BINARY];
  assert.ok(binaries[1] && fs.existsSync(binaries[1]), "HERALDCTL_BINARY must name the built heraldctl");
  const needed = new Set();
  for (const binary of binaries) for (const pkg of neededPackages(binary)) needed.add(pkg);
  const runtime = new Set(aptPackages(finalStage));
  const missing = [...needed].filter((p) => !runtime.has(p)).sort();
  assert.deepEqual(missing, [], "the image would lack these (the build would fail at `herald version`)");
  // Nothing else but the CA bundle (for ssl:// and wss:// brokers).
  const extra = [...runtime].filter((p) => !needed.has(p) && p !== "ca-certificates").sort();
  assert.deepEqual(extra, [], "runtime packages that neither binary loads");
  assert.ok(runtime.has("ca-certificates"));
  assert.ok(![...runtime].some((p) => /-dev$/.test(p)), "no -dev package at run time");
});

test("the build context (.dockerignore + COPY) is enough to configure Herald", (t) => {
  const excluded = dockerIgnore();
  const sources = [];
  for (const { args } of inStage(0, "COPY")) {
    const words = args.split(" ").filter((w) => !w.startsWith("--"));
    sources.push(...words.slice(0, -1).map((w) => w.replace(/\/$/, "")));
  }
  assert.ok(sources.length > 0);
  // What CMakeLists.txt builds without tests must be copied.
  const cmake = lib.readText(lib.repoPath("CMakeLists.txt"));
  const beforeTests = cmake.split(/^if\(HERALD_BUILD_TESTS\)/m)[0];
  for (const [, dir] of beforeTests.matchAll(/^add_subdirectory\((\S+)\)/gm)) {
    assert.ok(sources.includes(dir), `CMakeLists.txt adds ${dir}/, which the Dockerfile does not copy`);
  }
  assert.ok(sources.includes("migrations"), "the migrations are embedded at build time");

  const context = fs.mkdtempSync(path.join(os.tmpdir(), "herald-docker-context-"));
  t.after(() => fs.rmSync(context, { recursive: true, force: true }));
  for (const source of sources) {
    assert.ok(fs.existsSync(lib.repoPath(source)), `COPY ${source}: no such file`);
    assert.ok(!excluded(source), `COPY ${source}, but .dockerignore leaves it out of the context`);
    copyContext(lib.sourceDir, path.join(context, "src"), excluded, source);
  }
  // The obvious intruders stay out.
  for (const intruder of [".git", "build", "tests", "docs", ".herald-local", "deploy"]) {
    assert.ok(excluded(intruder), `.dockerignore lets ${intruder}/ into the context`);
  }
  // Configure as the Dockerfile does: its -D options, nothing else.
  const options = [...inStage(0, "RUN").map((i) => i.args).join(" ").matchAll(/(?<=\s)-D\S+/g)].map((m) => m[0]);
  assert.ok(options.includes("-DHERALD_BUILD_TESTS=OFF"));
  const configure = lib.run("cmake", ["-S", path.join(context, "src"), "-B", path.join(context, "build"), "-G", "Ninja",
                                      ...options]);
  assert.equal(configure.status, 0, `cmake cannot configure the Docker build context:\n${configure.stdout}${configure.stderr}`);
  const targets = lib.runOk("ninja", ["-C", path.join(context, "build"), "-t", "targets", "all"]);
  for (const target of ["service/herald", "service/ctl/heraldctl"]) {
    assert.ok(targets.split("\n").some((line) => line.startsWith(`${target}:`)), `the context does not build ${target}`);
  }

  // Everything CMake found on this machine must be in the image's build
  // stage too: installed there directly or as a dependency.
  const installed = installedPackages();
  const available = closure(aptPackages(0), installed);
  const findings = cmakeFindings(path.join(context, "build", "CMakeCache.txt"));
  assert.ok(findings.some((f) => f.variable === "gRPC_DIR"), "CMakeCache.txt lists what CMake found");
  const missing = [];
  const fileOwners = owners(findings.map((f) => f.file));
  for (const { variable, file } of findings) {
    const packages = fileOwners.get(file);
    if (packages.length === 0) continue;  // not from a package (e.g. built by hand): nothing to install
    if (!packages.some((p) => available.has(p))) missing.push(`${variable}=${file} (${packages.join(", ")})`);
  }
  assert.deepEqual(missing, [], "CMake found these here, but the Dockerfile's build stage does not install their packages");
});
