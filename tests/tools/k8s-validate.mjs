#!/usr/bin/env node
// Validate Kubernetes manifests against the Kubernetes API's schemas, offline:
//
//   node tests/tools/k8s-validate.mjs [--modules DIR] [--hardened] FILE...
//
// Each YAML document of each FILE is one test in TAP output. A document is
// valid when its apiVersion and kind name a built-in API object that the npm
// package kubernetes-models knows (an unknown one fails), its model's
// validate() accepts it (types, required fields, enums, formats such as
// quantities), and every field it sets exists in that object's API (a
// misspelled field fails, as with `kubectl apply --validate=strict`; the
// fields are read from the package's type declarations, since its JSON
// schemas allow any extra property).
//
// --hardened also requires of every container of every pod template (Pod,
// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob):
// runAsNonRoot true (its own or the pod's), allowPrivilegeEscalation false,
// capabilities.drop containing ALL, and no literal value for an environment
// variable whose name says PASSWORD (use a Secret).
//
// --modules DIR: the node_modules folder holding kubernetes-models and yaml;
// without it, tests/tools/k8s-tools.sh (next to this file) installs them in a
// cache and says where.
//
// Exit status: 0 if every document is valid, 1 if any is not, 2 on bad usage.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function usage() {
  process.stderr.write("usage: k8s-validate.mjs [--modules DIR] [--hardened] FILE...\n");
  process.exit(2);
}

let modules = null;
let hardened = false;
const files = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--modules") {
    if (++i >= argv.length) usage();
    modules = resolve(argv[i]);
  } else if (argv[i] === "--hardened") {
    hardened = true;
  } else if (argv[i].startsWith("-")) {
    usage();
  } else {
    files.push(argv[i]);
  }
}
if (files.length === 0) usage();
if (!modules) {
  const dir = execFileSync(join(here, "k8s-tools.sh"), { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  modules = join(dir.trim(), "node_modules");
}
const modelsDir = join(modules, "kubernetes-models");
if (!existsSync(join(modelsDir, "package.json"))) {
  process.stderr.write(`k8s-validate.mjs: error: no kubernetes-models in ${modules}\n`);
  process.exit(2);
}
const YAML = createRequire(join(modules, "noop.js"))("yaml");

// --- the model class of an apiVersion/kind ---------------------------------

// apiVersion "v1" is the core group (folder v1/), "apps/v1" is apps/v1/.
// The names are checked before they become paths.
async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || !/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion))
    return { error: `unknown apiVersion ${JSON.stringify(apiVersion)}` };
  if (typeof kind !== "string" || !/^[A-Z][A-Za-z0-9]*$/.test(kind))
    return { error: `unknown kind ${JSON.stringify(kind)}` };
  const file = join(modelsDir, apiVersion, `${kind}.js`);
  if (!existsSync(file)) return { error: `unknown kind ${kind} in ${apiVersion}` };
  const mod = await import(pathToFileURL(file).href);
  const cls = mod[kind];
  // Only API objects carry their apiVersion and kind; DeploymentSpec does not.
  if (!cls || cls.apiVersion !== apiVersion || cls.kind !== kind)
    return { error: `unknown kind ${kind} in ${apiVersion} (not an API object)` };
  return { cls, dts: file.replace(/\.js$/, ".d.ts") };
}

// --- unknown fields, from the type declarations ----------------------------

// A .d.ts file of the package: its first interface's properties (name ->
// type text) and where its imported names come from.
const dtsCache = new Map();
function readDts(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  let info = null;
  if (existsSync(file)) {
    const text = readFileSync(file, "utf8");
    const imports = new Map();
    for (const m of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm)) {
      for (const name of m[1].split(",")) imports.set(name.trim(), m[2]);
    }
    const body = /^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}$/m.exec(text);
    if (body) {
      const props = new Map();
      for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) props.set(m[1], m[2].replace(/;$/, ""));
      info = { file, props, imports };
    } else if (/^export type \w+ = /m.test(text)) {
      info = { file, alias: true };
    }
  }
  dtsCache.set(file, info);
  return info;
}

// The declaration file an imported type name comes from, or null.
function importedDts(info, name) {
  const from = info.imports.get(name);
  if (!from) return null;
  const base = from.startsWith(".") ? resolve(dirname(info.file), from) : join(modules, from);
  return base.replace(/\.js$/, "") + ".d.ts";
}

// Type text -> { array, dts } when it is an object type (or an array of one)
// whose fields can be checked; null for scalars, maps, aliases.
function fieldType(info, type) {
  let array = false;
  const a = /^Array<(.*)>$/.exec(type);
  if (a) {
    array = true;
    type = a[1];
  }
  if (!/^I\w+$/.test(type)) return null;
  const dts = importedDts(info, type);
  return dts ? { array, dts } : null;
}

function closest(word, candidates) {
  let best = null;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) [best, bestDist] = [c, d];
  }
  return bestDist <= Math.max(2, word.length / 3) ? best : null;
}

function distance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function unknownFields(value, dtsFile, path, errors) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const info = readDts(dtsFile);
  if (info?.alias) return; // Quantity, IntOrString, Time...: no fields to check
  if (!info) {
    // The package's layout changed: say so rather than check nothing.
    errors.push(`${path || "/"}: cannot read the fields of ${dtsFile}`);
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const type = info.props.get(key);
    if (type === undefined) {
      const near = closest(key, info.props.keys());
      errors.push(`${path}/${key}: unknown field "${key}"${near ? ` (did you mean "${near}"?)` : ""}`);
      continue;
    }
    const ft = fieldType(info, type);
    if (!ft) continue;
    if (ft.array && Array.isArray(v)) v.forEach((item, i) => unknownFields(item, ft.dts, `${path}/${key}/${i}`, errors));
    else if (!ft.array) unknownFields(v, ft.dts, `${path}/${key}`, errors);
  }
}

// --- --hardened ------------------------------------------------------------

function podSpecOf(doc) {
  const spec = doc.spec ?? {};
  switch (doc.kind) {
    case "Pod":
      return spec;
    case "CronJob":
      return spec.jobTemplate?.spec?.template?.spec;
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job":
      return spec.template?.spec;
    default:
      return undefined;
  }
}

function hardeningErrors(doc) {
  const errors = [];
  const pod = podSpecOf(doc);
  if (!pod) return errors;
  const podNonRoot = pod.securityContext?.runAsNonRoot;
  for (const group of ["initContainers", "containers", "ephemeralContainers"]) {
    for (const c of pod[group] ?? []) {
      const where = `${group} ${c.name}`;
      const sc = c.securityContext ?? {};
      if ((sc.runAsNonRoot ?? podNonRoot) !== true) errors.push(`${where}: runAsNonRoot is not true`);
      if (sc.allowPrivilegeEscalation !== false) errors.push(`${where}: allowPrivilegeEscalation is not false`);
      if (!(sc.capabilities?.drop ?? []).includes("ALL")) errors.push(`${where}: capabilities.drop lacks ALL`);
      for (const e of c.env ?? []) {
        if (/PASSWORD/i.test(e.name ?? "") && !/_FILE$/.test(e.name) && e.value !== undefined)
          errors.push(`${where}: env ${e.name} has a literal value (use a Secret)`);
      }
    }
  }
  return errors;
}

// --- the TAP run -----------------------------------------------------------

const results = [];
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    results.push({ name: file, errors: [`cannot read: ${e.message}`] });
    continue;
  }
  const lineCounter = new YAML.LineCounter();
  const docs = YAML.parseAllDocuments(text, { lineCounter, prettyErrors: false });
  let n = 0;
  for (const d of docs) {
    const line = lineCounter.linePos(d.range[0]).line;
    const at = `${file}:${line}`;
    if (d.errors.length) {
      results.push({
        name: at,
        errors: d.errors.map((e) => `${file}:${lineCounter.linePos(e.pos[0]).line}: YAML: ${e.message.split("\n")[0]}`),
      });
      continue;
    }
    const obj = d.toJS();
    if (obj === null || obj === undefined) continue; // an empty document (a trailing ---)
    n++;
    if (typeof obj !== "object" || Array.isArray(obj)) {
      results.push({ name: at, errors: ["not a mapping"] });
      continue;
    }
    const name = `${at} ${obj.apiVersion}/${obj.kind} ${obj.metadata?.name ?? "(no name)"}`;
    const model = await modelFor(obj.apiVersion, obj.kind);
    if (model.error) {
      results.push({ name, errors: [model.error] });
      continue;
    }
    const errors = [];
    try {
      new model.cls(obj).validate();
    } catch (e) {
      if (Array.isArray(e.errors)) {
        for (const err of e.errors) errors.push(`${err.instancePath || "/"}: ${err.message ?? err.keyword} ${err.params ? JSON.stringify(err.params) : ""}`.trim());
      } else {
        errors.push(String(e.message ?? e));
      }
    }
    unknownFields(obj, model.dts, "", errors);
    if (hardened) errors.push(...hardeningErrors(obj));
    results.push({ name, errors });
  }
  if (n === 0 && !results.some((r) => r.name.startsWith(`${file}:`)))
    results.push({ name: file, errors: ["no Kubernetes object in it"] });
}

console.log(`1..${results.length}`);
let failed = 0;
results.forEach((r, i) => {
  if (r.errors.length === 0) {
    console.log(`ok ${i + 1} - ${r.name}`);
  } else {
    failed++;
    console.log(`not ok ${i + 1} - ${r.name}`);
    for (const e of r.errors) console.log(`# ${e}`);
  }
});
process.exit(failed ? 1 : 0);
