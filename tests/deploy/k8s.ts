/**
 * Helpers of the deploy tests: find and parse the YAML under deploy/k8s, render kustomizations with kubectl,
 * validate core Kubernetes objects with kubernetes-models, and walk pod templates.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import * as appsV1 from "kubernetes-models/apps/v1";
import * as autoscalingV2 from "kubernetes-models/autoscaling/v2";
import * as batchV1 from "kubernetes-models/batch/v1";
import * as networkingV1 from "kubernetes-models/networking.k8s.io/v1";
import * as policyV1 from "kubernetes-models/policy/v1";
import * as rbacV1 from "kubernetes-models/rbac.authorization.k8s.io/v1";
import * as coreV1 from "kubernetes-models/v1";

export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const K8S_DIR = join(ROOT, "deploy/k8s");
export const OVERLAYS = ["dev", "prod"] as const;
export type Overlay = (typeof OVERLAYS)[number];

// Loose shapes: manifests are data; the tests assert what they need.
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
  [k: string]: any;
};
export type Container = {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: any[];
  envFrom?: any[];
  ports?: any[];
  readinessProbe?: any;
  livenessProbe?: any;
  startupProbe?: any;
  securityContext?: any;
  resources?: any;
  volumeMounts?: any[];
};

export function walk(dir: string, accept: (path: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      if (entry === "node_modules" || entry === ".next") continue;
      out.push(...walk(path, accept));
    } else if (accept(path)) out.push(path);
  }
  return out.sort();
}

export const yamlFiles = () => walk(K8S_DIR, (p) => /\.ya?ml$/.test(p));
export const rel = (path: string) => relative(ROOT, path);

/** Every document of a multi-document YAML text; throws with the file's name and the parser's errors. */
export function parseYaml(text: string, name: string): unknown[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new Error(`${name}: not a YAML stream`);
  const errors = docs.flatMap((d) => d.errors.map((e) => `${name}: ${e.message}`));
  if (errors.length) throw new Error(errors.join("\n"));
  return docs.map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
}

/**
 * kubectl (with its built-in kustomize) renders the overlays. Required, not optional: this machine kind
 * and CI have it (/usr/bin/kubectl), and a skipped render would hide a broken overlay. The message says
 * how to get it on a laptop.
 */
export function requireKubectl(): string {
  const found = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
  if (found.error || found.status !== 0) {
    throw new Error(
      "kubectl is required by the manifest tests (they render deploy/k8s/overlays/* with `kubectl kustomize`) " +
        "and was not found on the PATH. Install kubectl 1.27+ (it includes kustomize): " +
        "https://kubernetes.io/docs/tasks/tools/ — no cluster is needed.",
    );
  }
  return found.stdout;
}

export function kustomize(dir: string): K8sObject[] {
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 60_000, maxBuffer: 32 * 1024 * 1024 });
  return parseYaml(out, `kubectl kustomize ${rel(dir)}`) as K8sObject[];
}

/** Core API groups and their kubernetes-models modules. */
const CORE_MODELS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  "apps/v1": appsV1,
  "batch/v1": batchV1,
  "networking.k8s.io/v1": networkingV1,
  "policy/v1": policyV1,
  "autoscaling/v2": autoscalingV2,
  "rbac.authorization.k8s.io/v1": rbacV1,
};
export const isCore = (obj: K8sObject) => obj.apiVersion in CORE_MODELS;

/** Validates a core object against its schema; throws "Kind/name: <path> <reason>" on the first problem. */
export function validateCore(obj: K8sObject): void {
  const models = CORE_MODELS[obj.apiVersion];
  if (!models) throw new Error(`${obj.kind}/${obj.metadata?.name}: ${obj.apiVersion} is not a core API version`);
  const Model = models[obj.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (!Model) throw new Error(`${obj.kind}/${obj.metadata?.name}: no ${obj.kind} in ${obj.apiVersion}`);
  try {
    new Model(obj).validate();
  } catch (err) {
    throw new Error(`${obj.kind}/${obj.metadata?.name}: ${(err as Error).message}`, { cause: err });
  }
}

export const WORKLOAD_KINDS = ["Deployment", "StatefulSet", "Job"] as const;

export function podSpec(obj: K8sObject): any | undefined {
  return WORKLOAD_KINDS.includes(obj.kind as (typeof WORKLOAD_KINDS)[number]) ? obj.spec?.template?.spec : undefined;
}

export function podLabels(obj: K8sObject): Record<string, string> {
  return obj.spec?.template?.metadata?.labels ?? {};
}

export function containers(obj: K8sObject): Container[] {
  const spec = podSpec(obj);
  return spec ? [...(spec.initContainers ?? []), ...(spec.containers ?? [])] : [];
}

export function find(objs: K8sObject[], kind: string, name: string): K8sObject | undefined {
  return objs.find((o) => o.kind === kind && o.metadata.name === name);
}

export function get(objs: K8sObject[], kind: string, name: string): K8sObject {
  const obj = find(objs, kind, name);
  if (!obj) throw new Error(`${kind}/${name} is not in the rendered manifests`);
  return obj;
}

/** A value a container's environment gets: a literal, or a reference whose value is not in git. */
export type EnvValue = { kind: "value"; value: string } | { kind: "secret"; secret: string; key: string } | { kind: "ref"; from: string };

/**
 * The environment a container gets from the manifests: `env` entries and every key of the ConfigMaps it
 * imports with envFrom (resolved in the same render). Secrets imported with envFrom have keys that are not
 * in git: they are returned separately.
 */
export function containerEnv(objs: K8sObject[], c: Container): { env: Map<string, EnvValue>; secretImports: { name: string; optional: boolean }[] } {
  const env = new Map<string, EnvValue>();
  const secretImports: { name: string; optional: boolean }[] = [];
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) {
      const cm = get(objs, "ConfigMap", from.configMapRef.name);
      for (const [k, v] of Object.entries(cm.data ?? {})) env.set(`${from.prefix ?? ""}${k}`, { kind: "value", value: String(v) });
    } else if (from.secretRef) {
      secretImports.push({ name: from.secretRef.name, optional: from.secretRef.optional === true });
    }
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env.set(e.name, { kind: "value", value: String(e.value) });
    else if (e.valueFrom?.secretKeyRef) env.set(e.name, { kind: "secret", secret: e.valueFrom.secretKeyRef.name, key: e.valueFrom.secretKeyRef.key });
    else env.set(e.name, { kind: "ref", from: JSON.stringify(e.valueFrom) });
  }
  return { env, secretImports };
}

/** The port number a probe targets (a named port resolved against the container's ports). */
export function probePort(c: Container, probe: any): number | undefined {
  const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
  if (typeof port === "number") return port;
  return c.ports?.find((p: any) => p.name === port)?.containerPort;
}

export function readText(path: string): string {
  return readFileSync(join(ROOT, path), "utf8");
}
