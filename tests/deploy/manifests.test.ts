/**
 * deploy/k8s, checked without a cluster: every YAML parses; base and both overlays render with
 * `kubectl kustomize`; every core object validates against its Kubernetes schema (kubernetes-models);
 * KEDA ScaledObjects and the CloudNativePG Cluster have what those operators require; and the environment
 * the manifests give each service is cross-checked against the service's own zod env schema.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { errors as natsErrors } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { BUS_SERVICES, busInboxPrefix, deployNatsAuthConf, natsPasswordEnv } from "@vp/bus";
import { createTopology, EXECUTOR_OF, NODE_TYPES, type NodeType } from "@vp/contracts";
import { DB_ROLES, rolePasswordEnv, type DbRole } from "@vp/db";
import { executorEnvSchema } from "@vp/runtime";
import { concurrencyVar, jobTopologyOptions } from "@vp/runtime";
import { createStorageFromEnv } from "@vp/storage";
import { Env as GatewayEnv } from "../../services/gateway/src/env";
import { Env as SchedulerEnv } from "../../services/scheduler/src/env";
import { Env as StateWriterEnv } from "../../services/state-writer/src/env";
import { Env as ExecutorFfmpegEnv } from "../../services/executor-ffmpeg/src/env";
import { Env as ExecutorAiEnv } from "../../services/executor-ai/src/env";
import {
  containerEnv,
  containers,
  find,
  get,
  isCore,
  K8S_DIR,
  kustomize,
  OVERLAYS,
  parseYaml,
  podLabels,
  podSpec,
  probePort,
  readText,
  rel,
  requireKubectl,
  ROOT,
  validateCore,
  walk,
  yamlFiles,
  type Container,
  type K8sObject,
  type Overlay,
} from "./k8s";

const NAMESPACE = "video-pipelines";
const topology = createTopology();

/** The five backend services: their env schema, and the database roles whose password each one gets. */
const SERVICES = {
  gateway: { schema: GatewayEnv, roles: [DB_ROLES.reader, DB_ROLES.editor], portVar: "PORT" },
  scheduler: { schema: SchedulerEnv, roles: [DB_ROLES.reader], portVar: "HEALTH_PORT" },
  "state-writer": { schema: StateWriterEnv, roles: [DB_ROLES.stateWriter], portVar: "HEALTH_PORT" },
  "executor-ffmpeg": { schema: ExecutorFfmpegEnv, roles: [DB_ROLES.reader], portVar: "HEALTH_PORT" },
  "executor-ai": { schema: ExecutorAiEnv, roles: [DB_ROLES.reader], portVar: "HEALTH_PORT" },
} satisfies Record<string, { schema: z.ZodObject; roles: DbRole[]; portVar: string }>;
type ServiceName = keyof typeof SERVICES;
const SERVICE_NAMES = Object.keys(SERVICES) as ServiceName[];

/**
 * Variables a service reads outside its zod schema, each with where it is read. The test below checks each
 * named file really mentions the variable, so this list cannot silently go stale.
 */
const READ_OUTSIDE_SCHEMA: { name: string; readIn: string[]; why: string }[] = [
  {
    name: "DATABASE_ADMIN_URL",
    readIn: ["services/gateway/src/env.ts", "services/scheduler/src/env.ts", "services/state-writer/src/env.ts", "packages/runtime/src/executor.ts"],
    why: "base URL (host, port, database; no credentials here) from which the DATABASE_URL defaults derive each role's URL with roleUrl()",
  },
  {
    name: "OTEL_EXPORTER_OTLP_ENDPOINT",
    readIn: ["packages/telemetry/src/tracing.ts"],
    why: "turns on the OTLP/HTTP trace exporter (and is read again by the OpenTelemetry SDK)",
  },
  { name: "LOG_PRETTY", readIn: ["packages/telemetry/src/logger.ts"], why: "human-readable logs (local runs only)" },
  ...["S3_BUCKET", "S3_PREFIX", "S3_REGION", "S3_ENDPOINT", "S3_FORCE_PATH_STYLE"].map((name) => ({
    name,
    readIn: ["packages/storage/src/env.ts"],
    why: "the S3 storage backend (createStorageFromEnv), selected by STORAGE=s3",
  })),
];
/** The roles' passwords: read by roleUrl() in packages/db/src/connection.ts under rolePasswordEnv(role). */
const PASSWORD_VARS = new Map(Object.values(DB_ROLES).map((role) => [rolePasswordEnv(role), role]));
/**
 * Prefixes read by libraries: OTEL_* by the OpenTelemetry SDK (NodeSDK reads its env configuration), NODE_*
 * by Node, AWS_* by the AWS SDK's credential and region chain (and packages/storage/src/env.ts).
 */
const LIBRARY_PREFIXES = ["OTEL_", "NODE_", "AWS_"];

/** Secrets the manifests reference and the operator creates (deploy/k8s/README.md "Secrets"), or CloudNativePG does. */
/** Each service's NATS password: `vp-nats-<service>`, key `password` (read by the service and by nats-server). */
const natsSecret = (service: string) => `vp-nats-${service}`;
const OPERATOR_SECRETS = [
  "vp-db-editor",
  "vp-db-state-writer",
  "vp-db-reader",
  "vp-provider-keys",
  "vp-gateway-auth",
  "vp-web-oidc",
  ...BUS_SERVICES.map(natsSecret),
];
const GENERATED_SECRETS = ["vp-postgres-app"];

/** Node types whose work costs money (paid providers, headless Chromium): their executors may idle at zero. */
const EXPENSIVE: NodeType[] = ["talking-head", "generate-animation", "generate-voiceover", "render-code"];

let base: K8sObject[];
const rendered = {} as Record<Overlay, K8sObject[]>;

beforeAll(() => {
  requireKubectl();
  base = kustomize(join(K8S_DIR, "base"));
  for (const overlay of OVERLAYS) rendered[overlay] = kustomize(join(K8S_DIR, "overlays", overlay));
});

const ours = (objs: K8sObject[]) => objs.filter((o) => o.metadata?.labels?.["app.kubernetes.io/part-of"] === "video-pipelines");
const serviceDeployment = (objs: K8sObject[], name: ServiceName) => get(objs, "Deployment", name);
const serviceContainer = (objs: K8sObject[], name: ServiceName): Container => {
  const c = containers(serviceDeployment(objs, name)).find((x) => x.name === name);
  if (!c) throw new Error(`Deployment/${name} has no container named ${name}`);
  return c;
};

/** A ConfigMap made by a configMapGenerator: its name is `<name>-<content hash>`. */
const generatedConfigMap = (objs: K8sObject[], name: string): K8sObject => {
  const found = objs.filter((o) => o.kind === "ConfigMap" && new RegExp(`^${name}-[a-z0-9]{10}$`).test(o.metadata.name));
  expect(
    found.map((o) => o.metadata.name),
    `one generated ConfigMap ${name}-<hash>`,
  ).toHaveLength(1);
  return found[0]!;
};

/** The services that build a media storage with createStorageFromEnv (gateway main.ts, the executors' runtime). */
const STORAGE_SERVICES: ServiceName[] = ["gateway", "executor-ffmpeg", "executor-ai"];

/** A container's literal environment (values from Secrets as a placeholder). */
const envValues = (objs: K8sObject[], c: Container): Record<string, string> =>
  Object.fromEntries([...containerEnv(objs, c).env].map(([k, v]) => [k, v.kind === "value" ? v.value : "from-a-secret"]));

describe("deploy/k8s YAML", () => {
  it("every YAML file parses (multi-document) into objects with apiVersion and kind", () => {
    const files = yamlFiles();
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      const docs = parseYaml(readFileSync(file, "utf8"), rel(file));
      expect(docs.length, `${rel(file)} has no document`).toBeGreaterThan(0);
      for (const doc of docs) {
        expect(doc, rel(file)).toMatchObject({ apiVersion: expect.any(String), kind: expect.any(String) });
      }
    }
  });

  it("every kustomization renders, and the overlays render the whole base", () => {
    expect(base.length).toBeGreaterThan(30);
    for (const overlay of OVERLAYS) {
      const names = new Set(rendered[overlay].map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, "")}`));
      // prod keeps media in S3: the shared claim is the one object it removes.
      const removed = overlay === "prod" ? ["PersistentVolumeClaim/vp-storage"] : [];
      for (const o of base) {
        const id = `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, "")}`;
        if (!removed.includes(id)) expect(names, `${overlay} lacks ${o.kind}/${o.metadata.name}`).toContain(id);
      }
    }
  });
});

describe.each(["base", ...OVERLAYS] as const)("rendered %s", (which) => {
  const objs = () => (which === "base" ? base : rendered[which]);

  it("validates every core Kubernetes object against its schema (kubernetes-models)", () => {
    const core = objs().filter(isCore);
    expect(core.length).toBeGreaterThan(25);
    for (const obj of core) validateCore(obj);
    const other = objs()
      .filter((o) => !isCore(o))
      .map((o) => `${o.apiVersion} ${o.kind}`);
    // Everything else is checked field by field below.
    expect(new Set(other)).toEqual(new Set(["keda.sh/v1alpha1 ScaledObject", "postgresql.cnpg.io/v1 Cluster"]));
  });

  it("puts everything in one namespace, labelled with its apply stage", () => {
    for (const o of objs()) {
      if (o.kind === "Namespace") expect(o.metadata.name).toBe(NAMESPACE);
      else expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(NAMESPACE);
      expect(o.metadata.labels?.["app.kubernetes.io/part-of"], `${o.kind}/${o.metadata.name}`).toBe("video-pipelines");
      expect(["platform", "migrate", "app"], `${o.kind}/${o.metadata.name} vp-stage`).toContain(o.metadata.labels?.["vp-stage"]);
    }
    const stage = (kind: string, name: string) => get(objs(), kind, name).metadata.labels?.["vp-stage"];
    expect(stage("Namespace", NAMESPACE)).toBe("platform");
    expect(stage("StatefulSet", "nats")).toBe("platform");
    expect(stage("Cluster", "vp-postgres")).toBe("platform");
    expect(stage("Job", "vp-migrate")).toBe("migrate");
    for (const name of [...SERVICE_NAMES, "web"]) expect(stage("Deployment", name)).toBe("app");
  });

  it("holds no Secret values: only references to the Secrets the README tells the operator to create", () => {
    expect(objs().filter((o) => o.kind === "Secret")).toEqual([]);
    const readme = readText("deploy/k8s/README.md");
    const referenced = new Set<string>();
    for (const o of objs()) {
      for (const c of containers(o)) {
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) referenced.add(e.valueFrom.secretKeyRef.name);
        for (const f of c.envFrom ?? []) if (f.secretRef) referenced.add(f.secretRef.name);
      }
      for (const v of podSpec(o)?.volumes ?? []) if (v.secret) referenced.add(v.secret.secretName);
      for (const r of o.kind === "Cluster" ? (o.spec.managed?.roles ?? []) : []) if (r.passwordSecret) referenced.add(r.passwordSecret.name);
    }
    for (const name of referenced) {
      expect([...OPERATOR_SECRETS, ...GENERATED_SECRETS], `unexpected Secret ${name}`).toContain(name);
      expect(readme, `deploy/k8s/README.md does not mention the Secret ${name}`).toContain(name);
    }
  });

  it("pins every image (a tag or a digest, never latest), NATS at 2.10.23 or newer", () => {
    for (const o of objs()) {
      for (const c of containers(o)) {
        expect(c.image, `${o.kind}/${o.metadata.name}`).toMatch(/^[^@\s]+(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$/);
        expect(c.image).not.toMatch(/:latest$/);
      }
    }
    const nats = containers(get(objs(), "StatefulSet", "nats")).find((c) => c.name === "nats")!;
    const [major, minor, patch] = /^nats:(\d+)\.(\d+)\.(\d+)/.exec(nats.image)!.slice(1).map(Number) as [number, number, number];
    expect(major * 1e6 + minor * 1e3 + patch, nats.image).toBeGreaterThanOrEqual(2_010_023);
    const pg = get(objs(), "Cluster", "vp-postgres");
    expect(pg.spec.imageName).toMatch(/:\d+(\.\d+)*(-[\w.-]+)?$|@sha256:/);
  });

  it("runs every pod as non-root, without privilege escalation or capabilities, and without API tokens", () => {
    for (const o of objs().filter(podSpec)) {
      const spec = podSpec(o);
      const what = `${o.kind}/${o.metadata.name}`;
      expect(spec.securityContext?.runAsNonRoot, what).toBe(true);
      expect(spec.securityContext?.runAsUser, what).toBeGreaterThan(0);
      expect(spec.securityContext?.seccompProfile?.type, what).toBe("RuntimeDefault");
      expect(spec.automountServiceAccountToken, what).toBe(false);
      expect(find(objs(), "ServiceAccount", spec.serviceAccountName), `${what}: ServiceAccount ${spec.serviceAccountName}`).toBeDefined();
      for (const c of containers(o)) {
        expect(c.securityContext?.allowPrivilegeEscalation, `${what} ${c.name}`).toBe(false);
        expect(c.securityContext?.capabilities?.drop, `${what} ${c.name}`).toEqual(["ALL"]);
        expect(c.resources?.requests?.memory, `${what} ${c.name} memory request`).toBeDefined();
        expect(c.resources?.limits?.memory, `${what} ${c.name} memory limit`).toBeDefined();
      }
    }
    // The five services and the editor also run on a read-only root file system (their writable paths are volumes).
    expect(containers(get(objs(), "Deployment", "web"))[0]!.securityContext.readOnlyRootFilesystem, "web").toBe(true);
    for (const name of SERVICE_NAMES) expect(serviceContainer(objs(), name).securityContext.readOnlyRootFilesystem, name).toBe(true);
  });

  it("sets each service's SHUTDOWN_GRACE_MS under its pod's terminationGracePeriodSeconds (executors: most of 120 s)", () => {
    for (const name of SERVICE_NAMES) {
      const grace = containerEnv(objs(), serviceContainer(objs(), name)).env.get("SHUTDOWN_GRACE_MS");
      expect(grace?.kind, name).toBe("value");
      const ms = Number((grace as { value: string }).value);
      const podSeconds = get(objs(), "Deployment", name).spec.template.spec.terminationGracePeriodSeconds ?? 30;
      expect(ms, name).toBeLessThan(podSeconds * 1000);
      expect(ms, name).toBeGreaterThanOrEqual(podSeconds * 1000 * 0.8);
    }
  });

  it("rolls the gateway without refusing connections: a preStop sleep, then a drain, all within terminationGracePeriodSeconds", () => {
    const c = serviceContainer(objs(), "gateway") as Container & { lifecycle?: { preStop?: { sleep?: { seconds: number } } } };
    const sleepSeconds = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
    expect(sleepSeconds, "preStop sleep while the endpoints change").toBeGreaterThanOrEqual(3);
    const { env } = containerEnv(objs(), c);
    const value = (key: string) => Number((env.get(key) as { value: string } | undefined)?.value);
    const podSeconds = get(objs(), "Deployment", "gateway").spec.template.spec.terminationGracePeriodSeconds ?? 30;
    expect(value("SHUTDOWN_DRAIN_DELAY_MS"), "drain delay").toBeGreaterThanOrEqual(5000);
    expect(value("SHUTDOWN_DRAIN_DELAY_MS"), "drain delay inside the grace").toBeLessThan(value("SHUTDOWN_GRACE_MS"));
    expect(sleepSeconds * 1000 + value("SHUTDOWN_GRACE_MS"), "preStop + grace").toBeLessThan(podSeconds * 1000);
  });

  it("gives each service exactly the variables its env schema knows, and every one it requires", () => {
    for (const name of SERVICE_NAMES) {
      const { schema, roles } = SERVICES[name];
      const c = serviceContainer(objs(), name);
      const { env, secretImports } = containerEnv(objs(), c);
      const known = new Set(Object.keys(schema.shape));
      for (const key of env.keys()) {
        const outside = READ_OUTSIDE_SCHEMA.some((v) => v.name === key) || PASSWORD_VARS.has(key) || LIBRARY_PREFIXES.some((p) => key.startsWith(p));
        expect(known.has(key) || outside, `${name}: ${key} is set by the manifests but unknown to its env schema and to the allowlist`).toBe(true);
      }
      // Required without a default: a schema field that does not accept "unset".
      for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
        if (!field.safeParse(undefined).success) expect(env.has(key), `${name}: ${key} is required by its env schema and not set`).toBe(true);
      }
      // The literal values parse with the service's own schema (ports are numbers, etc.).
      const values: Record<string, string> = {};
      for (const [key, v] of env) values[key] = v.kind === "value" ? v.value : "from-a-secret";
      const parsed = schema.safeParse(values);
      expect(parsed.success, `${name}: ${parsed.success ? "" : z.prettifyError(parsed.error)}`).toBe(true);
      // Database roles: each service gets the password of exactly the roles it uses (only the state-writer
      // ever holds vp_state_writer's), from the Secret CloudNativePG uses for that role.
      const cluster = get(objs(), "Cluster", "vp-postgres");
      const passwords = [...env.keys()].filter((k) => PASSWORD_VARS.has(k));
      expect(passwords.sort(), name).toEqual(roles.map(rolePasswordEnv).sort());
      for (const role of roles) {
        const ref = env.get(rolePasswordEnv(role));
        const managed = cluster.spec.managed.roles.find((r: { name: string }) => r.name === role);
        expect(ref, `${name} ${role}`).toEqual({ kind: "secret", secret: managed.passwordSecret.name, key: "password" });
      }
      // Secrets imported whole must be optional (the service works without them) and documented.
      for (const imported of secretImports) {
        expect(imported.optional, `${name} imports Secret ${imported.name}`).toBe(true);
        expect(OPERATOR_SECRETS).toContain(imported.name);
      }
    }
  });

  it("spells out executor-ffmpeg's own settings (local backend by default): every one with a default, none that is optional without one", () => {
    const { env } = containerEnv(objs(), serviceContainer(objs(), "executor-ffmpeg"));
    const common = new Set(Object.keys(executorEnvSchema({ workRoot: "/work", healthPort: 3073 }).shape));
    for (const [key, field] of Object.entries(ExecutorFfmpegEnv.shape as Record<string, z.ZodType>)) {
      if (common.has(key)) continue;
      // LAMBDA_ENDPOINT / LAMBDA_REGION: unset means "AWS itself" and "AWS_REGION"; an empty value would not.
      const optionalWithoutDefault = field.safeParse(undefined).success && field.parse(undefined) === undefined;
      expect(env.has(key), `executor-ffmpeg: ${key} ${optionalWithoutDefault ? "is optional without a default and must stay unset" : "is not set"}`).toBe(
        !optionalWithoutDefault,
      );
    }
    const values = Object.fromEntries([...env].map(([k, v]) => [k, v.kind === "value" ? v.value : "x"]));
    expect(ExecutorFfmpegEnv.parse(values)).toMatchObject({ FFMPEG_BACKEND: "local", STORAGE: which === "prod" ? "s3" : "local" });
  });

  it("keeps the allowlist of variables read outside the schemas honest", () => {
    for (const v of READ_OUTSIDE_SCHEMA) {
      for (const file of v.readIn) expect(readText(file), `${v.name} is not read in ${file} (${v.why})`).toContain(v.name);
    }
  });

  it("keeps media where the gateway and both executors find it: local disk on the shared claim under STORAGE_ROOT, or an S3 bucket with no claim", () => {
    // The services that build a storage are exactly the ones whose env schema declares STORAGE.
    expect(SERVICE_NAMES.filter((name) => "STORAGE" in SERVICES[name].schema.shape)).toEqual(STORAGE_SERVICES);
    const kinds = new Set<string>();
    for (const name of STORAGE_SERVICES) {
      const c = serviceContainer(objs(), name);
      const pod = podSpec(serviceDeployment(objs(), name));
      const values = envValues(objs(), c);
      const parsed = SERVICES[name].schema.parse(values) as { STORAGE: string; STORAGE_ROOT: string };
      kinds.add(parsed.STORAGE);
      const claims = (c.volumeMounts ?? [])
        .map((m: any) => ({ mountPath: m.mountPath as string, volume: pod.volumes.find((v: any) => v.name === m.name) }))
        .filter((m: any) => m.volume?.persistentVolumeClaim);
      if (parsed.STORAGE === "local") {
        const under = claims.find((m: any) => parsed.STORAGE_ROOT.startsWith(`${m.mountPath}/`));
        expect(under?.volume.persistentVolumeClaim.claimName, `${name}: STORAGE_ROOT ${parsed.STORAGE_ROOT} on the shared claim`).toBe("vp-storage");
        expect(get(objs(), "PersistentVolumeClaim", "vp-storage")).toBeDefined();
      } else {
        expect(values.S3_BUCKET?.trim(), `${name}: STORAGE=s3 needs S3_BUCKET`).toBeTruthy();
        expect(claims, `${name}: S3 needs no claim`).toEqual([]);
        // The same call main.ts makes builds the S3 backend from the rendered settings.
        expect(() => createStorageFromEnv(values), name).not.toThrow();
      }
    }
    expect(kinds.size, "gateway and executors share one backend").toBe(1);
    // One backend for all three: the same settings, from the same ConfigMap.
    const refs = STORAGE_SERVICES.map((name) => (serviceContainer(objs(), name).envFrom ?? []).map((f: any) => f.configMapRef?.name).filter(Boolean));
    const storageMap = generatedConfigMap(objs(), "vp-storage").metadata.name;
    for (const [i, names] of refs.entries()) expect(names, STORAGE_SERVICES[i]).toContain(storageMap);
  });

  it("imports every ConfigMap's environment (envFrom) under its generated, content-hashed name, so changing a setting rolls the pods", () => {
    const referenced = new Set<string>();
    for (const o of objs().filter(podSpec)) {
      for (const c of containers(o)) for (const f of c.envFrom ?? []) if (f.configMapRef) referenced.add(f.configMapRef.name);
    }
    expect(referenced.size).toBe(4);
    for (const name of referenced) {
      expect(name, "a generated name").toMatch(/-[a-z0-9]{10}$/);
      expect(find(objs(), "ConfigMap", name), `ConfigMap ${name}`).toBeDefined();
    }
    for (const name of ["vp-common", "vp-storage", "vp-executor-ffmpeg", "vp-jobs"])
      expect(referenced).toContain(generatedConfigMap(objs(), name).metadata.name);
  });

  it("gives the scheduler and both executors the job settings from one ConfigMap, so the consumers the scheduler creates are the ones the executors consume", () => {
    const jobs = generatedConfigMap(objs(), "vp-jobs").metadata.name;
    const settings = (name: ServiceName) => {
      expect(
        (serviceContainer(objs(), name).envFrom ?? []).map((f: any) => f.configMapRef?.name),
        name,
      ).toContain(jobs);
      const values = envValues(objs(), serviceContainer(objs(), name));
      return jobTopologyOptions(SERVICES[name].schema.parse(values) as Parameters<typeof jobTopologyOptions>[0]);
    };
    const scheduler = settings("scheduler");
    for (const executor of ["executor-ffmpeg", "executor-ai"] as const) expect(settings(executor), executor).toEqual(scheduler);
    for (const name of SERVICE_NAMES) {
      const own = (serviceContainer(objs(), name).env ?? []).map((e: any) => e.name as string);
      expect(
        own.filter((v) => v.startsWith("JOB_") || v.endsWith("_CONCURRENCY")),
        `${name} sets a job setting of its own`,
      ).toEqual([]);
    }
  });

  it("runs the editor on a read-only root file system, writing only to emptyDirs for Next's cache and /tmp", () => {
    const web = get(objs(), "Deployment", "web");
    const c = containers(web)[0]!;
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    const volumes = podSpec(web).volumes ?? [];
    const mounts = Object.fromEntries((c.volumeMounts ?? []).map((m: any) => [m.mountPath, volumes.find((v: any) => v.name === m.name)]));
    // The image's working directory is /app/web (web/Dockerfile); Next writes .next/cache under it.
    expect(readText("web/Dockerfile")).toMatch(/WORKDIR \/app\/web\n/);
    for (const path of ["/app/web/.next/cache", "/tmp"]) expect(mounts[path]?.emptyDir, `${path} on an emptyDir`).toBeDefined();
  });

  it("gives the executors a writable HOME (the image user's /home/node) for fontconfig's and Chromium's caches", () => {
    expect(readText("deploy/Dockerfile.service")).toMatch(/^USER 1000:1000$/m);
    for (const name of ["executor-ffmpeg", "executor-ai"] as const) {
      const c = serviceContainer(objs(), name);
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      const home = containerEnv(objs(), c).env.get("HOME");
      const path = home?.kind === "value" ? home.value : "/home/node";
      const mount = (c.volumeMounts ?? []).find((m: any) => m.mountPath === path);
      expect(mount, `${name}: HOME ${path} is mounted`).toBeDefined();
      expect(podSpec(serviceDeployment(objs(), name)).volumes.find((v: any) => v.name === mount.name).emptyDir, `${name}: HOME on an emptyDir`).toBeDefined();
    }
  });

  it("probes each service on the port its schema resolves (/ready for readiness, /health for liveness)", () => {
    for (const name of SERVICE_NAMES) {
      const { schema, portVar } = SERVICES[name];
      const c = serviceContainer(objs(), name);
      const { env } = containerEnv(objs(), c);
      const values = Object.fromEntries([...env].map(([k, v]) => [k, v.kind === "value" ? v.value : "x"]));
      const port = (schema.parse(values) as Record<string, unknown>)[portVar];
      expect(c.readinessProbe?.httpGet?.path, name).toBe("/ready");
      expect(c.livenessProbe?.httpGet?.path, name).toBe("/health");
      expect(probePort(c, c.readinessProbe), `${name} readiness port`).toBe(port);
      expect(probePort(c, c.livenessProbe), `${name} liveness port`).toBe(port);
    }
    const web = containers(get(objs(), "Deployment", "web"))[0]!;
    expect(probePort(web, web.readinessProbe)).toBe(3065);
  });

  it("lets Prometheus scrape each service's /metrics: annotations name the port its probes use, and the monitoring namespace may reach the workers' ports", () => {
    const policies = objs().filter((o) => o.kind === "NetworkPolicy");
    const metricsPolicy = policies.find((p) => p.metadata.name === "metrics");
    expect(metricsPolicy?.spec.podSelector, "metrics policy").toEqual({ matchLabels: { "vp-metrics": "true" } });
    const rule = metricsPolicy!.spec.ingress[0];
    expect(rule.from).toEqual([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }]);
    const allowed = new Set(rule.ports.map((p: any) => p.port));
    for (const name of SERVICE_NAMES) {
      const deployment = get(objs(), "Deployment", name);
      const annotations = deployment.spec.template.metadata.annotations ?? {};
      const c = serviceContainer(objs(), name);
      const port = probePort(c, c.readinessProbe);
      expect(annotations["prometheus.io/scrape"], `${name} scrape`).toBe("true");
      expect(annotations["prometheus.io/path"], `${name} path`).toBe("/metrics");
      expect(Number(annotations["prometheus.io/port"]), `${name} metrics port`).toBe(port);
      if (name === "gateway") continue; // its HTTP port is open to all (its own policy)
      expect(podLabels(deployment)["vp-metrics"], `${name} vp-metrics label`).toBe("true");
      expect(allowed.has(port), `${name} port ${port} open to the monitoring namespace`).toBe(true);
    }
    const web = get(objs(), "Deployment", "web");
    expect(podLabels(web)["vp-metrics"], "the editor has no /metrics").toBeUndefined();
  });

  it("sets on the editor only variables it reads (web sources) or Next.js reads", () => {
    const sources = walk(join(ROOT, "web"), (p) => /\.(ts|tsx|js|mjs|cjs)$/.test(p)).map((p) => readFileSync(p, "utf8"));
    const read = new Set(sources.flatMap((s) => [...s.matchAll(/process\.env(?:\.([A-Z0-9_]+)|\[["']([A-Z0-9_]+)["']\])/g)].map((m) => m[1] ?? m[2]!)));
    const nextReads = ["PORT", "HOSTNAME", "NODE_ENV", "NEXT_TELEMETRY_DISABLED"];
    for (const c of containers(get(objs(), "Deployment", "web"))) {
      for (const key of containerEnv(objs(), c).env.keys()) expect(read.has(key) || nextReads.includes(key), `web: ${key}`).toBe(true);
    }
  });

  it("requires bearer JWTs at the gateway: auth on, issuer and audience set, the signing secret from a Secret; prod keys from a JWKS, no dev login", () => {
    const { env } = containerEnv(objs(), serviceContainer(objs(), "gateway"));
    const value = (key: string) => (env.get(key) as { kind: string; value?: string } | undefined)?.value;
    expect(value("AUTH_MODE")).toBe("jwt");
    expect(value("AUTH_ISSUER")).toBeTruthy();
    expect(value("AUTH_AUDIENCE")).toBeTruthy();
    expect(env.get("AUTH_SECRET")).toEqual({ kind: "secret", secret: "vp-gateway-auth", key: "secret" });
    if (which === "prod") {
      expect(new URL(value("AUTH_JWKS_URL")!).protocol).toBe("https:");
      expect(new URL(value("AUTH_ISSUER")!).protocol).toBe("https:");
    }
    expect(["true", "1"].includes(value("AUTH_DEV_LOGIN") ?? ""), "the dev login is for laptop clusters only").toBe(which === "dev");
    // The dev login answers only kubectl port-forward (Host localhost from the pod's loopback): no extra names.
    expect(env.has("AUTH_DEV_LOGIN_HOSTS"), "AUTH_DEV_LOGIN_HOSTS would open the dev login to anyone sending that Host").toBe(false);
  });

  it("has the gateway listen on the pod's interfaces explicitly (unset, it listens on loopback while the dev login is on)", () => {
    const { env } = containerEnv(objs(), serviceContainer(objs(), "gateway"));
    expect(env.get("HOST")).toEqual({ kind: "value", value: "0.0.0.0" });
  });

  it("signs editor users in at the gateway's identity provider in prod (OIDC), with the dev login elsewhere", () => {
    const { env } = containerEnv(objs(), containers(get(objs(), "Deployment", "web"))[0]!);
    const gateway = containerEnv(objs(), serviceContainer(objs(), "gateway")).env;
    const value = (e: Map<string, unknown>, key: string) => (e.get(key) as { value?: string } | undefined)?.value;
    if (which !== "prod") {
      expect(env.has("OIDC_ISSUER"), "without OIDC_ISSUER the editor uses the dev login").toBe(false);
      return;
    }
    // The tokens the editor gets are the ones the gateway accepts: the same issuer, over https.
    expect(value(env, "OIDC_ISSUER")).toBe(value(gateway, "AUTH_ISSUER"));
    expect(new URL(value(env, "OIDC_ISSUER")!).protocol).toBe("https:");
    expect(value(env, "OIDC_CLIENT_ID")).toBeTruthy();
    // The redirect URIs are made from EDITOR_URL, the origin the gateway's CORS_ORIGINS admits.
    const editor = new URL(value(env, "EDITOR_URL")!);
    expect(editor.protocol).toBe("https:");
    expect(
      value(gateway, "CORS_ORIGINS")!
        .split(",")
        .map((o) => o.trim()),
    ).toContain(editor.origin);
    expect(env.get("OIDC_COOKIE_SECRET")).toEqual({ kind: "secret", secret: "vp-web-oidc", key: "cookie-secret" });
    expect(env.get("OIDC_CLIENT_SECRET")).toEqual({ kind: "secret", secret: "vp-web-oidc", key: "client-secret" });
  });

  it("tells the editor where the browser finds the gateway, and lets the gateway answer the editor's origin", () => {
    const web = containerEnv(objs(), containers(get(objs(), "Deployment", "web"))[0]!).env.get("GATEWAY_URL");
    expect(web?.kind).toBe("value");
    expect(new URL((web as { value: string }).value).protocol).toMatch(/^https?:$/);
    const cors = containerEnv(objs(), serviceContainer(objs(), "gateway")).env.get("CORS_ORIGINS") as { value: string };
    for (const origin of cors.value.split(",")) expect(new URL(origin.trim()).origin, "CORS_ORIGINS lists origins").toBe(origin.trim());
  });

  it("runs the migration with the database owner's URL, from the gateway image, before the services", () => {
    const job = get(objs(), "Job", "vp-migrate");
    const [c] = containers(job);
    // The gateway image's compiled packages/db/src/cli.ts (scripts/bundle-service.mjs), run from /app/services/gateway.
    expect(c!.command).toEqual(["node", "--enable-source-maps", "dist/migrate.js"]);
    expect(readText("scripts/bundle-service.mjs")).toContain('migrate: join(root, "packages/db/src/cli.ts")');
    expect(c!.image).toBe(serviceContainer(objs(), "gateway").image);
    const { env } = containerEnv(objs(), c!);
    expect([...env.keys()]).toEqual(["DATABASE_ADMIN_URL"]);
    expect(readText("packages/db/src/cli.ts")).toContain("process.env.DATABASE_ADMIN_URL");
    const cluster = get(objs(), "Cluster", "vp-postgres");
    // CloudNativePG names the owner's generated Secret <cluster>-app; its `uri` key is a complete URL.
    expect(env.get("DATABASE_ADMIN_URL")).toEqual({ kind: "secret", secret: `${cluster.metadata.name}-app`, key: "uri" });
    expect(podSpec(job).restartPolicy).toMatch(/^(OnFailure|Never)$/);
  });

  it("lets only the pods that use Postgres, NATS or the collector reach them (NetworkPolicies and pod labels agree)", () => {
    const policies = objs().filter((o) => o.kind === "NetworkPolicy");
    const deny = policies.find((p) => p.metadata.name === "default-deny-ingress")!;
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress"] });
    const policyFor = (selector: Record<string, string>) => policies.find((p) => JSON.stringify(p.spec.podSelector?.matchLabels) === JSON.stringify(selector));
    const clientLabel = (policy: K8sObject | undefined, port: number) =>
      policy?.spec.ingress.find((r: any) => r.ports.some((p: any) => p.port === port) && r.from?.[0]?.podSelector?.matchLabels)?.from[0].podSelector
        .matchLabels;

    const cluster = get(objs(), "Cluster", "vp-postgres");
    const pgPolicy = policyFor({ "cnpg.io/cluster": cluster.metadata.name });
    expect(clientLabel(pgPolicy, 5432), "postgres policy").toEqual({ "vp-postgres-client": "true" });
    const natsLabels = get(objs(), "StatefulSet", "nats").spec.template.metadata.labels;
    const natsPolicy = policyFor({ "app.kubernetes.io/name": natsLabels["app.kubernetes.io/name"] });
    expect(clientLabel(natsPolicy, 4222), "nats policy").toEqual({ "vp-nats-client": "true" });
    const otelPolicy = policyFor({ "app.kubernetes.io/name": "otel-collector" });
    expect(clientLabel(otelPolicy, 4318), "collector policy").toEqual({ "vp-otel-client": "true" });

    for (const o of objs().filter(podSpec)) {
      const env = new Set(containers(o).flatMap((c) => [...containerEnv(objs(), c).env.keys()]));
      const labels = podLabels(o);
      const usesPg = [...env].some((k) => k === "DATABASE_ADMIN_URL" || k === "DATABASE_URL" || PASSWORD_VARS.has(k));
      const what = `${o.kind}/${o.metadata.name}`;
      expect(labels["vp-postgres-client"] === "true", `${what} postgres label`).toBe(usesPg);
      expect(labels["vp-nats-client"] === "true", `${what} nats label`).toBe(env.has("NATS_URL"));
      expect(labels["vp-otel-client"] === "true", `${what} collector label`).toBe(env.has("OTEL_EXPORTER_OTLP_ENDPOINT"));
    }
  });

  it("points the services at the in-cluster NATS, Postgres and collector", () => {
    const common = generatedConfigMap(objs(), "vp-common").data!;
    const natsUrl = new URL(common.NATS_URL!);
    expect(get(objs(), "Service", natsUrl.hostname).spec.ports.map((p: any) => p.port)).toContain(Number(natsUrl.port));
    expect(common.BUS_NAMESPACE).toBe("");
    const pgUrl = new URL(common.DATABASE_ADMIN_URL!);
    // CloudNativePG's read-write Service of the cluster; no credentials in the ConfigMap.
    expect(pgUrl.hostname).toBe(`${get(objs(), "Cluster", "vp-postgres").metadata.name}-rw`);
    expect(pgUrl.username + pgUrl.password).toBe("");
    expect(pgUrl.pathname.slice(1)).toBe(get(objs(), "Cluster", "vp-postgres").spec.bootstrap.initdb.database);
    const otel = new URL(common.OTEL_EXPORTER_OTLP_ENDPOINT!);
    expect(get(objs(), "Service", otel.hostname).spec.ports.map((p: any) => p.port)).toContain(Number(otel.port));
  });

  it("scales every executor node type with KEDA on its JetStream consumer's pending messages", () => {
    const scaled = objs().filter((o) => o.kind === "ScaledObject");
    const covered = new Map<string, string>();
    const headless = get(objs(), "Service", get(objs(), "StatefulSet", "nats").spec.serviceName);
    expect(headless.spec.clusterIP).toBe("None");
    for (const so of scaled) {
      const what = `ScaledObject/${so.metadata.name}`;
      expect(so.apiVersion).toBe("keda.sh/v1alpha1");
      // Required by KEDA: the target (a Deployment by default) and at least one trigger with type + metadata.
      const target = get(objs(), "Deployment", so.spec.scaleTargetRef.name);
      expect(so.spec.scaleTargetRef.kind ?? "Deployment").toBe("Deployment");
      expect(target.spec.replicas, `${what}: the Deployment must not set replicas (KEDA owns them)`).toBeUndefined();
      expect(
        scaled.filter((x) => x.spec.scaleTargetRef.name === target.metadata.name),
        "one ScaledObject per workload",
      ).toHaveLength(1);
      expect(Number.isInteger(so.spec.minReplicaCount) && Number.isInteger(so.spec.maxReplicaCount), what).toBe(true);
      expect(so.spec.minReplicaCount).toBeLessThanOrEqual(so.spec.maxReplicaCount);
      expect(so.spec.maxReplicaCount).toBeGreaterThanOrEqual(1);
      expect(so.spec.triggers.length, what).toBeGreaterThan(0);
      const types: NodeType[] = [];
      for (const t of so.spec.triggers) {
        expect(t.type, what).toBe("nats-jetstream");
        const m = t.metadata as Record<string, unknown>;
        // KEDA's trigger metadata is a map of strings.
        for (const [k, v] of Object.entries(m)) expect(typeof v, `${what} ${k}`).toBe("string");
        for (const k of ["natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"]) expect(m[k], `${what} ${k}`).toBeTruthy();
        expect(m.lagThreshold).toMatch(/^[1-9]\d*$/);
        expect(m.account).toBe("$G");
        expect(m.stream).toBe(topology.streams.jobs.name);
        const type = NODE_TYPES.find((nt) => topology.consumers.job(nt).durable === m.consumer);
        expect(type, `${what}: ${String(m.consumer)} is no executor consumer`).toBeDefined();
        expect(covered.has(type!), `${type} scaled twice`).toBe(false);
        covered.set(type!, target.metadata.name);
        types.push(type!);
        // The scaler asks <server_name>.<endpoint host> for a clustered consumer's leader: the endpoint must
        // be the StatefulSet's headless Service, fully qualified in this namespace, on the monitoring port.
        expect(m.natsServerMonitoringEndpoint).toBe(`${headless.metadata.name}.${NAMESPACE}.svc.cluster.local:8222`);
      }
      if (types.every((t) => EXPENSIVE.includes(t))) expect(so.spec.minReplicaCount, `${what} serves only expensive types`).toBe(0);
      // Maximum from the per-type caps: each type's in-flight jobs across ALL replicas are capped by its
      // concurrency (the consumer's max ack pending: <TYPE>_CONCURRENCY where the schema has one, else
      // JOB_CONCURRENCY), so more replicas than the sum of the caps could never all have work.
      const name = target.metadata.name as ServiceName;
      const { schema } = SERVICES[name];
      const values = Object.fromEntries([...containerEnv(objs(), serviceContainer(objs(), name)).env].map(([k, v]) => [k, v.kind === "value" ? v.value : "x"]));
      const env = schema.parse(values) as Record<string, unknown>;
      const cap = (t: NodeType) => Number(env[concurrencyVar(t)] ?? env.JOB_CONCURRENCY);
      const caps = types.map(cap);
      expect(
        caps.every((c) => c >= 1),
        `${what} caps ${caps}`,
      ).toBe(true);
      expect(so.spec.maxReplicaCount, `${what}: maxReplicaCount above the sum of the per-type caps ${caps}`).toBeLessThanOrEqual(
        caps.reduce((a, b) => a + b, 0),
      );
    }
    // Every node type is scaled, on the Deployment of the executor the catalog names for it.
    for (const type of NODE_TYPES) expect(covered.get(type), type).toBe(EXECUTOR_OF[type]);
  });

  it("scales the gateway with an HPA", () => {
    const hpa = get(objs(), "HorizontalPodAutoscaler", "gateway");
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "gateway" });
    expect(serviceDeployment(objs(), "gateway").spec.replicas).toBeUndefined();
    expect(serviceContainer(objs(), "gateway").resources.requests.cpu, "CPU utilisation needs a CPU request").toBeDefined();
  });

  it("declares the CloudNativePG Cluster with the fields the operator requires and the three roles", () => {
    const pg = get(objs(), "Cluster", "vp-postgres");
    expect(pg.apiVersion).toBe("postgresql.cnpg.io/v1");
    expect(Number.isInteger(pg.spec.instances) && pg.spec.instances >= 1).toBe(true);
    expect(pg.spec.storage.size).toMatch(/^\d+(Mi|Gi|Ti)$/);
    expect(pg.spec.bootstrap.initdb).toMatchObject({ database: "video_production", owner: expect.any(String) });
    expect(pg.spec.enableSuperuserAccess).toBe(false);
    const roles = pg.spec.managed.roles as { name: string; ensure?: string; login?: boolean; inherit?: boolean; passwordSecret?: { name: string } }[];
    for (const role of Object.values(DB_ROLES)) {
      const r = roles.find((x) => x.name === role);
      // LOGIN NOINHERIT, like the migration's CREATE ROLE (packages/db/migrations).
      expect(r, role).toMatchObject({ ensure: "present", login: true, inherit: false, passwordSecret: { name: expect.any(String) } });
    }
    const owner = roles.find((x) => x.name === pg.spec.bootstrap.initdb.owner);
    expect(owner, "the owner runs the migration, which may create the roles").toMatchObject({ login: true, createrole: true });
    expect(readText("packages/db/migrations/1735689600000_init.sql")).toMatch(/CREATE ROLE %I LOGIN NOINHERIT/);
  });

  it("configures NATS as JetStream on file storage with fsync on every write", () => {
    const sts = get(objs(), "StatefulSet", "nats");
    const cm = get(objs(), "ConfigMap", sts.spec.template.spec.volumes.find((v: any) => v.name === "config").configMap.name);
    const conf = cm.data!["nats.conf"]!;
    expect(conf).toMatch(/^server_name: \$POD_NAME$/m);
    expect(conf).toMatch(/store_dir: \/data/);
    expect(conf).toMatch(/sync_interval: always/);
    const mount = sts.spec.template.spec.containers[0].volumeMounts.find((m: any) => m.mountPath === "/data");
    expect(sts.spec.volumeClaimTemplates.map((t: any) => t.metadata.name)).toContain(mount.name);
    const routes = [...conf.matchAll(/nats:\/\/([\w-]+)\.([\w-]+):6222/g)];
    if (sts.spec.replicas > 1) {
      // One route per server, through the headless Service's per-pod names.
      expect(routes.map((r) => r[1])).toEqual(Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}`));
      for (const r of routes) expect(r[2]).toBe(sts.spec.serviceName);
    } else {
      expect(conf).not.toMatch(/cluster\s*{/);
    }
  });
});

describe("overlays", () => {
  it("dev: one replica of everything, Jaeger all-in-one in the cluster, single-node NATS, small Postgres", () => {
    const objs = rendered.dev;
    for (const o of objs.filter((x) => x.kind === "Deployment" || x.kind === "StatefulSet")) {
      expect(o.spec.replicas ?? 1, `${o.kind}/${o.metadata.name}`).toBe(1);
    }
    expect(get(objs, "HorizontalPodAutoscaler", "gateway").spec.maxReplicas).toBe(1);
    for (const so of objs.filter((x) => x.kind === "ScaledObject")) expect(so.spec.maxReplicaCount).toBe(1);
    expect(get(objs, "Cluster", "vp-postgres").spec.instances).toBe(1);
    const jaeger = containers(get(objs, "Deployment", "jaeger"))[0]!;
    expect(jaeger.image).toMatch(/jaegertracing\/jaeger:2\./);
    const collector = containers(get(objs, "Deployment", "otel-collector"))[0]!;
    const endpoint = collector.env!.find((e: any) => e.name === "JAEGER_OTLP_ENDPOINT").value as string;
    const [host, port] = endpoint.split(":");
    expect(get(objs, "Service", host!).spec.ports.map((p: any) => p.port)).toContain(Number(port));
    expect(find(rendered.prod, "Deployment", "jaeger"), "prod uses the production Jaeger").toBeUndefined();
  });

  it("collector: OTLP in on 4317/4318, forwarded to Jaeger's OTLP/gRPC endpoint", () => {
    for (const overlay of OVERLAYS) {
      const cm = get(rendered[overlay], "ConfigMap", "otel-collector-config");
      const config = parseYaml(cm.data!["config.yaml"]!, "collector config")[0] as any;
      expect(config.receivers.otlp.protocols.http.endpoint).toBe("0.0.0.0:4318");
      expect(config.exporters["otlp_grpc/jaeger"].endpoint).toBe("${env:JAEGER_OTLP_ENDPOINT}");
      expect(config.service.pipelines.traces).toMatchObject({ receivers: ["otlp"], exporters: ["otlp_grpc/jaeger"] });
    }
  });

  it("prod: replicas, resources, PodDisruptionBudgets, topology spread, NATS one server per node, synchronous Postgres", () => {
    const objs = rendered.prod;
    const workloads = ours(objs).filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet");
    const pdbs = objs.filter((o) => o.kind === "PodDisruptionBudget");
    for (const w of workloads) {
      const labels = podLabels(w);
      const pdb = pdbs.find((p) => Object.entries(p.spec.selector.matchLabels).every(([k, v]) => labels[k] === v));
      expect(pdb, `${w.kind}/${w.metadata.name} has no PodDisruptionBudget`).toBeDefined();
      for (const c of containers(w)) expect(c.resources?.requests?.cpu, `${w.metadata.name} cpu request`).toBeDefined();
    }
    for (const name of [...SERVICE_NAMES, "web"]) {
      const spread = podSpec(get(objs, "Deployment", name)).topologySpreadConstraints ?? [];
      expect(spread.map((s: any) => s.topologyKey).sort(), name).toEqual(["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
      for (const s of spread) expect(s.labelSelector.matchLabels["app.kubernetes.io/name"]).toBe(name);
    }
    for (const name of ["scheduler", "state-writer", "web"]) expect(get(objs, "Deployment", name).spec.replicas, name).toBeGreaterThanOrEqual(2);
    expect(get(objs, "HorizontalPodAutoscaler", "gateway").spec.minReplicas).toBeGreaterThanOrEqual(2);
    const nats = get(objs, "StatefulSet", "nats");
    expect(nats.spec.replicas).toBe(3);
    expect(podSpec(nats).affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe("kubernetes.io/hostname");
    const pg = get(objs, "Cluster", "vp-postgres");
    expect(pg.spec.instances).toBe(3);
    expect(pg.spec.postgresql.synchronous).toMatchObject({ method: "any", number: 1 });
    expect(pg.spec.affinity).toMatchObject({ enablePodAntiAffinity: true, topologyKey: "kubernetes.io/hostname" });
  });
});

describe("stream replicas", () => {
  it.each(["base", ...OVERLAYS] as const)("%s: the scheduler (the stream manager) creates every stream with one copy per NATS server", (which) => {
    const objs = which === "base" ? base : rendered[which];
    const servers = get(objs, "StatefulSet", "nats").spec.replicas as number;
    const env = SchedulerEnv.parse(envValues(objs, serviceContainer(objs, "scheduler")));
    const streams = createTopology({ namespace: env.BUS_NAMESPACE, streamReplicas: env.STREAM_REPLICAS }).allStreams();
    expect(streams.map((st) => [st.name, st.replicas])).toEqual(streams.map((st) => [st.name, servers]));
    expect(servers).toBe(which === "dev" ? 1 : 3);
  });
});

describe("prod storage", () => {
  it("keeps media in S3: no PersistentVolumeClaim without a storageClassName, nothing ReadWriteMany, and every service that stores media has STORAGE=s3 and a bucket", () => {
    const objs = rendered.prod;
    for (const pvc of objs.filter((o) => o.kind === "PersistentVolumeClaim")) {
      expect(pvc.spec.storageClassName, `PersistentVolumeClaim/${pvc.metadata.name} names its StorageClass`).toBeTruthy();
    }
    const claims = [
      ...objs.filter((o) => o.kind === "PersistentVolumeClaim"),
      ...objs.flatMap((o) => (o.kind === "StatefulSet" ? (o.spec.volumeClaimTemplates ?? []) : [])),
    ];
    for (const claim of claims) expect(claim.spec.accessModes, claim.metadata.name).not.toContain("ReadWriteMany");
    for (const name of STORAGE_SERVICES) {
      const values = envValues(objs, serviceContainer(objs, name));
      expect(values.STORAGE, name).toBe("s3");
      expect(values.S3_BUCKET?.trim(), `${name} S3_BUCKET`).toBeTruthy();
      const volumes = podSpec(serviceDeployment(objs, name)).volumes ?? [];
      expect(
        volumes.filter((v: any) => v.persistentVolumeClaim),
        `${name} mounts no claim`,
      ).toEqual([]);
    }
  });
});

describe("generated ConfigMaps", () => {
  it("a changed vp-common value changes every service's pod template, so applying it rolls them", () => {
    const copy = mkdtempSync(join(tmpdir(), "vp-k8s-"));
    try {
      cpSync(K8S_DIR, join(copy, "k8s"), { recursive: true });
      const envFile = join(copy, "k8s/base/app/common.env");
      writeFileSync(envFile, readFileSync(envFile, "utf8").replace(/^LOG_LEVEL=info$/m, "LOG_LEVEL=debug"));
      const out = execFileSync("kubectl", ["kustomize", join(copy, "k8s/overlays/dev")], { encoding: "utf8", timeout: 60_000, maxBuffer: 32 * 1024 * 1024 });
      const edited = parseYaml(out, "edited dev") as K8sObject[];
      expect(generatedConfigMap(edited, "vp-common").data!.LOG_LEVEL).toBe("debug");
      for (const name of SERVICE_NAMES) {
        const before = JSON.stringify(get(rendered.dev, "Deployment", name).spec.template);
        const after = JSON.stringify(get(edited, "Deployment", name).spec.template);
        expect(after, `${name}'s pod template`).not.toBe(before);
      }
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe("deploy/k8s/README.md", () => {
  it("names what the cluster and the operator need: metrics-server for the gateway's HPA, the kustomize CLI for `kustomize edit`", () => {
    const readme = readText("deploy/k8s/README.md");
    const prerequisites = readme.slice(readme.indexOf("### 1. Prerequisites"), readme.indexOf("### 2."));
    expect(rendered.prod.some((o) => o.kind === "HorizontalPodAutoscaler" && o.spec.metrics?.some((m: any) => m.type === "Resource"))).toBe(true);
    expect(prerequisites, "metrics-server (resource metrics of the gateway's HPA)").toMatch(/metrics-server/);
    expect(readme).toMatch(/kustomize edit/);
    expect(prerequisites, "how to install the standalone kustomize CLI").toMatch(/kubectl\.docs\.kubernetes\.io\/installation\/kustomize/);
  });

  it("every file a kustomization names, in its fields or its comments, exists", () => {
    const kustomizations = walk(K8S_DIR, (p) => p.endsWith("kustomization.yaml"));
    expect(kustomizations.length).toBeGreaterThanOrEqual(5);
    for (const file of kustomizations) {
      const text = readFileSync(file, "utf8");
      // Directories it renders: its own and the kustomizations it builds on (resources that are directories).
      const dirs = [
        dirname(file),
        ...((parseYaml(text, rel(file))[0] as { resources?: string[] }).resources ?? [])
          .map((r) => join(dirname(file), r))
          .filter((d) => existsSync(d) && statSync(d).isDirectory()),
      ];
      for (const [path] of text.matchAll(/[\w./-]+\.(?:ya?ml|md|conf|env)(?![\w=])/g)) {
        // A path from the kustomization's directory or the repository root, or the bare name of a file it renders.
        const found =
          [join(dirname(file), path), join(ROOT, path)].some((c) => existsSync(c)) ||
          (!path.includes("/") && dirs.some((d) => walk(d, (p) => p.endsWith(`/${path}`)).length > 0));
        expect(found, `${rel(file)} names ${path}, which does not exist`).toBe(true);
      }
    }
  });

  it("lists the apply order: platform, wait, migrate, wait for the Job, app", () => {
    const readme = readText("deploy/k8s/README.md");
    const steps = [
      "kubectl apply -k deploy/k8s/overlays/dev -l vp-stage=platform",
      "kubectl -n video-pipelines wait cluster/vp-postgres --for=condition=Ready",
      "kubectl apply -k deploy/k8s/overlays/dev -l vp-stage=migrate",
      "kubectl -n video-pipelines wait --for=condition=complete job/vp-migrate",
      "kubectl apply -k deploy/k8s/overlays/dev -l vp-stage=app",
    ];
    let at = -1;
    for (const step of steps) {
      const next = readme.indexOf(step, at + 1);
      expect(next, `README lacks (or misorders) \`${step}\``).toBeGreaterThan(at);
      at = next;
    }
    for (const secret of OPERATOR_SECRETS) expect(readme).toContain(`kubectl -n video-pipelines create secret generic ${secret}`);
  });
});

describe.each(["base", ...OVERLAYS] as const)("NATS users, rendered %s", (which) => {
  const objs = () => (which === "base" ? base : rendered[which]);
  const natsContainer = () => containers(get(objs(), "StatefulSet", "nats")).find((c) => c.name === "nats")!;
  const natsConfig = () => {
    const sts = get(objs(), "StatefulSet", "nats");
    return get(objs(), "ConfigMap", sts.spec.template.spec.volumes.find((v: any) => v.name === "config").configMap.name).data!;
  };

  it("the server's users are the ones @vp/bus busPermissions() generates (auth.conf, included by nats.conf), with no anonymous user", () => {
    const config = natsConfig();
    expect(config["auth.conf"], "deploy/k8s/base/platform/nats/auth.conf is stale: run `node --import tsx scripts/nats-auth-conf.ts`").toBe(
      deployNatsAuthConf(),
    );
    expect(config["nats.conf"]).toMatch(/^include \.\/auth\.conf$/m);
    expect(`${config["nats.conf"]}${config["auth.conf"]}`).not.toMatch(/no_auth_user|authorization\s*{[^}]*token/);
  });

  it("nats-server reads each service's password from that service's Secret, quoted for its config parser", () => {
    const { env } = containerEnv(objs(), natsContainer());
    // Unquoted references only ("$JS.API…" in quotes is a subject).
    const referenced = [...config(natsConfig()["auth.conf"]!).matchAll(/:\s*\$([A-Za-z0-9_]+)\s*$/gm)].map((m) => m[1]!);
    expect(referenced.sort()).toEqual(BUS_SERVICES.map(natsPasswordEnv).sort());
    const order = (natsContainer().env ?? []).map((e: any) => e.name as string);
    for (const service of BUS_SERVICES) {
      const quoted = natsPasswordEnv(service);
      expect(env.get(`${quoted}_VALUE`), service).toEqual({ kind: "secret", secret: natsSecret(service), key: "password" });
      expect(env.get(quoted), service).toEqual({ kind: "value", value: `"$(${quoted}_VALUE)"` });
      // Kubernetes expands $(X) only from entries defined earlier in the list.
      expect(order.indexOf(`${quoted}_VALUE`), service).toBeLessThan(order.indexOf(quoted));
    }
  });

  it("every service connects as its own user with its own Secret, and no workload holds another service's NATS password", () => {
    for (const name of SERVICE_NAMES) {
      const { env } = containerEnv(objs(), serviceContainer(objs(), name));
      expect(env.get("NATS_USER"), name).toEqual({ kind: "value", value: name });
      expect(env.get("NATS_PASSWORD"), name).toEqual({ kind: "secret", secret: natsSecret(name), key: "password" });
    }
    for (const o of objs().filter(podSpec)) {
      for (const c of containers(o)) {
        const secrets = (c.env ?? [])
          .map((e: any) => e.valueFrom?.secretKeyRef?.name)
          .filter((n: unknown): n is string => typeof n === "string" && n.startsWith("vp-nats-"));
        const allowed = o.kind === "StatefulSet" && o.metadata.name === "nats" ? BUS_SERVICES.map(natsSecret) : [natsSecret(o.metadata.name)];
        for (const s of secrets) expect(allowed, `${o.kind}/${o.metadata.name} reads ${s}`).toContain(s);
        expect(
          (c.envFrom ?? []).some((f: any) => f.secretRef?.name?.startsWith("vp-nats-")),
          `${o.kind}/${o.metadata.name} imports a NATS Secret whole`,
        ).toBe(false);
      }
    }
  });

  it("nats-server 2.9 runs the rendered users with the StatefulSet's environment: each service logs in with its Secret's password and only within its permissions; a client without credentials is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vp-nats-auth-"));
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const secrets = new Map<string, string>();
    // What the kubelet gives the container: Secret values, then $(VAR) expanded from the entries before.
    const env: Record<string, string> = {};
    for (const e of natsContainer().env ?? []) {
      if (e.valueFrom?.secretKeyRef) {
        // Hex from openssl rand, made to start with digits and an "e" (a float to a careless parser).
        const value = `1e9${randomBytes(16).toString("hex")}`;
        secrets.set(e.valueFrom.secretKeyRef.name, value);
        env[e.name] = value;
      } else if (e.value !== undefined) env[e.name] = String(e.value).replace(/\$\(([A-Za-z0-9_]+)\)/g, (_: string, v: string) => env[v] ?? "");
    }
    writeFileSync(join(dir, "auth.conf"), natsConfig()["auth.conf"]!);
    writeFileSync(join(dir, "nats.conf"), `listen: "127.0.0.1:${port}"\ninclude ./auth.conf\n`);
    const server = spawn("/usr/sbin/nats-server", ["-c", join(dir, "nats.conf")], {
      env: { ...env, PATH: process.env.PATH },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    server.stderr!.on("data", (d) => (stderr += d));
    try {
      const url = `nats://127.0.0.1:${port}`;
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          await (await connect({ servers: url, user: "gateway", pass: secrets.get(natsSecret("gateway")), reconnect: false })).close();
          break;
        } catch (err) {
          if (Date.now() > deadline || server.exitCode !== null) throw new Error(`nats-server did not accept the gateway: ${String(err)}; ${stderr}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      for (const service of BUS_SERVICES) {
        const nc = await connect({
          servers: url,
          user: service,
          pass: secrets.get(natsSecret(service)),
          reconnect: false,
          inboxPrefix: busInboxPrefix(service, topology),
        });
        // Commands are the gateway's alone.
        const outcome = await nc.request(topology.subjects.execute, new Uint8Array(), { timeout: 1_000 }).then(
          () => "allowed",
          (err: unknown) =>
            err instanceof natsErrors.PermissionViolationError || (err as Error).cause instanceof natsErrors.PermissionViolationError ? "denied" : "allowed",
        );
        expect(outcome, service).toBe(service === "gateway" ? "allowed" : "denied");
        await nc.close();
      }
      await expect(connect({ servers: url, reconnect: false })).rejects.toBeInstanceOf(natsErrors.AuthorizationError);
      await expect(connect({ servers: url, user: "gateway", pass: secrets.get(natsSecret("scheduler")), reconnect: false })).rejects.toBeInstanceOf(
        natsErrors.AuthorizationError,
      );
    } finally {
      server.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A nats-server config without its comment lines. */
function config(text: string): string {
  return text.replace(/^\s*#.*$/gm, "");
}
