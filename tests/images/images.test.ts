/**
 * The images, built and run: every service image and the editor's build from the repository root with buildah
 * (layer cache on), then run with podman as the rendered dev overlay runs them (its env names and values, its
 * user, read-only root file system and writable mounts), against the machine's NATS and PostgreSQL. The
 * migration Job's command migrates a fresh database from the gateway image; npm start's demo pipeline (every
 * node type) runs through the containerised gateway, scheduler, executors and state-writer; an executor stopped with
 * SIGTERM in the middle of a job loses nothing and the job completes once.
 *
 * The documents' commands are the test's: the images build with deploy/images.md's `docker build` lines (as
 * `buildah bud`), every render of deploy/k8s/README.md and deploy/images.md renders, and the README's first run
 * with curl and its metrics check run as bash scripts against the containers (tests/images/walkthrough.ts).
 *
 * Run with `npm run test:images` (scripts/ensure-images.sh installs buildah/podman and builds the local base).
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chown, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestBus, dropDatabase, freePort, startOtlpReceiver, testAuthEnv, testToken, type OtlpReceiver, type TestBus } from "@vp/testkit";
import { containerEnv, containers, get, K8S_DIR, kustomize, parseYaml, podSpec, ROOT, type Container, type K8sObject } from "../deploy/k8s";
import { runDemo } from "../../scripts/demo";
import { buildImage, inspectImage, runContainer, shellIn, waitForHttpOk, type RunningContainer } from "./podman";
import { docBuilds, renderCommands, runnableScript, shellBlocks, sseCommand, walkthroughBlock, IMAGES_DOC, README, WALKTHROUGH_BLOCKS } from "./walkthrough";

const exec = promisify(execFile);

const SERVICES = ["gateway", "scheduler", "state-writer", "executor-ffmpeg", "executor-ai"] as const;
type Service = (typeof SERVICES)[number];
type ImageName = Service | "web";
const IMAGES: ImageName[] = [...SERVICES, "web"];

/** Upper bounds of each image's size (MB of uncompressed layers, as podman counts them). */
const SIZE_LIMIT_MB: Record<ImageName, number> = {
  gateway: 350,
  scheduler: 350,
  "state-writer": 350,
  // Debian's ffmpeg and espeak-ng (even without Mesa's GPU drivers and LLVM) take about 230 MB of their own.
  "executor-ai": 600,
  // ffmpeg and Chromium (render-code).
  "executor-ffmpeg": 1100,
  web: 250,
};
const READY_WITHIN_MS = 5000;

const BASE_IMAGE = process.env.VP_BASE_IMAGE ?? "localhost/video-pipelines/node:24-bookworm-slim";
const tagOf = (name: ImageName) => `localhost/video-pipelines/${name}:test`;
const ARTIFACTS = join(ROOT, ".artifacts/images");
/** deploy/images.md's builds, by image. */
const DOC_BUILDS = new Map(docBuilds().map((b) => [b.image, b]));

const run = randomBytes(3).toString("hex");
const dbName = `vp_img_${run}`;
let scratch: string;
let bus: TestBus;
let otlp: OtlpReceiver;
let objs: K8sObject[];
const running = new Map<string, RunningContainer>();
const report: Record<string, { buildSeconds?: number; sizeMb?: number; readyMs?: number }> = {};

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-images-"));
  objs = kustomize(join(K8S_DIR, "overlays/dev"));
  otlp = await startOtlpReceiver();
  bus = await createTestBus({ namespace: `img${run}`, ensure: false });
});

afterAll(async () => {
  await Promise.all([...running.values()].map((c) => c.remove()));
  await bus?.cleanup();
  await dropDatabase(dbName).catch(() => undefined);
  await otlp?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  const rows = Object.entries(report).map(
    ([name, r]) =>
      `${name.padEnd(16)} ${String(r.buildSeconds?.toFixed(0) ?? "-").padStart(6)} s build ${String(r.sizeMb?.toFixed(0) ?? "-").padStart(6)} MB ${String(r.readyMs?.toFixed(0) ?? "-").padStart(6)} ms to ready`,
  );
  console.log(`images:\n${rows.join("\n")}`);
});

// --- the manifests: env, user, mounts --------------------------------------------------------------------------

function serviceContainer(name: string): { container: Container; pod: any } {
  const deployment = get(objs, "Deployment", name);
  const [container] = containers(deployment);
  return { container: container!, pod: podSpec(deployment) };
}

/** Host directories for the pod's volumes: one per PersistentVolumeClaim (shared like the claim), one per emptyDir. */
async function mountsOf(owner: string, container: Container, pod: any): Promise<Array<{ source: string; target: string }>> {
  const uid = Number(pod.securityContext?.runAsUser ?? 1000);
  const gid = Number(pod.securityContext?.fsGroup ?? pod.securityContext?.runAsGroup ?? uid);
  const mounts: Array<{ source: string; target: string }> = [];
  for (const m of container.volumeMounts ?? []) {
    const volume = (pod.volumes ?? []).find((v: any) => v.name === m.name);
    expect(volume, `volume ${m.name} of ${owner}`).toBeDefined();
    const source = volume.persistentVolumeClaim ? join(scratch, "claims", volume.persistentVolumeClaim.claimName) : join(scratch, owner, m.name);
    expect(volume.persistentVolumeClaim ?? volume.emptyDir, `${owner} volume ${m.name}: a claim or an emptyDir`).toBeDefined();
    await mkdir(source, { recursive: true });
    await chown(source, uid, gid);
    mounts.push({ source, target: m.mountPath });
  }
  return mounts;
}

/** The container's env from the rendered overlay (ConfigMaps and values), with the machine's addresses in place of the cluster's. */
function envOf(container: Container, local: Record<string, string>): Record<string, string> {
  const { env } = containerEnv(objs, container);
  const out: Record<string, string> = {};
  for (const [k, v] of env) if (v.kind === "value") out[k] = v.value;
  for (const k of Object.keys(local)) expect(env.has(k), `${container.name}: the manifests set ${k}`).toBe(true);
  return { ...out, ...local };
}

function securityOf(container: Container, pod: any) {
  const sc = container.securityContext ?? {};
  const user = `${pod.securityContext?.runAsUser ?? sc.runAsUser}:${pod.securityContext?.runAsGroup ?? sc.runAsGroup}`;
  expect(user).toMatch(/^\d+:\d+$/);
  return {
    user,
    readOnlyRoot: sc.readOnlyRootFilesystem === true,
    dropAllCapabilities: (sc.capabilities?.drop ?? []).includes("ALL"),
    noNewPrivileges: sc.allowPrivilegeEscalation === false,
  };
}

/** Addresses of this machine in place of the in-cluster ones, a fresh namespace and database, free ports. */
async function localEnv(service: Service): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    NATS_URL: "nats://127.0.0.1:4222",
    // Without credentials: each service derives its role's URL (vp_reader, vp_state_writer...); trust auth here.
    DATABASE_ADMIN_URL: `postgres://127.0.0.1:5432/${dbName}`,
    BUS_NAMESPACE: bus.topology.namespace,
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
  };
  if (service === "gateway") env.PORT = String(await freePort());
  else env.HEALTH_PORT = String(await freePort());
  return env;
}

const readyUrl = (env: Record<string, string>) => `http://127.0.0.1:${env.PORT ?? env.HEALTH_PORT}/ready`;

async function startService(service: Service): Promise<{ container: RunningContainer; env: Record<string, string>; readyMs: number }> {
  const { container, pod } = serviceContainer(service);
  const env = envOf(container, await localEnv(service));
  // The cluster's NATS has a user per service (its password from a Secret); the machine's NATS has none.
  delete env.NATS_USER;
  delete env.NATS_PASSWORD;
  if (service === "gateway") {
    Object.assign(env, testAuthEnv());
    // The pod listens on its interfaces; on the host network here, loopback is enough.
    if ("HOST" in env) env.HOST = "127.0.0.1";
  }
  const name = `vp-img-${run}-${service}-${randomBytes(2).toString("hex")}`;
  const started = await runContainer({
    name,
    image: tagOf(service),
    env,
    ...securityOf(container, pod),
    mounts: await mountsOf(service, container, pod),
    logFile: join(ARTIFACTS, `${name}.log`),
  });
  running.set(name, started);
  let exited = false;
  void started.exited.then(() => (exited = true));
  const readyMs = await waitForHttpOk(readyUrl(env), name, 60_000, () => !exited).catch(async (error: Error) => {
    throw new Error(`${service}: ${error.message}; last lines: ${JSON.stringify(started.logs.slice(-10))}`);
  });
  return { container: started, env, readyMs };
}

// --- the pipeline ----------------------------------------------------------------------------------------------

type ApiNode = { id: string; status: string; metadata: Record<string, any> | null; output: Record<string, any> | null };

function api(baseUrl: string) {
  const root = `${baseUrl}/v1/video_production`;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const bytes = body instanceof Uint8Array;
    const response = await fetch(`${root}${path}`, {
      method,
      headers: { authorization: `Bearer ${await testToken()}`, ...(body !== undefined && !bytes ? { "content-type": "application/json" } : {}), ...headers },
      body: body === undefined ? undefined : bytes ? (body as unknown as BodyInit) : JSON.stringify(body),
    });
    const text = await response.text();
    expect(response.status, `${method} ${path}: ${text.slice(0, 500)}`).toBeLessThan(300);
    return text ? JSON.parse(text) : {};
  };
  return {
    root,
    call,
    node: async (P: string, id: string): Promise<ApiNode> => (await call("GET", `/pipelines/${P}/nodes/${id}`)).node,
    async waitForNode(P: string, id: string, statuses: string[], timeoutMs: number): Promise<ApiNode> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const node = (await call("GET", `/pipelines/${P}/nodes/${id}`)).node as ApiNode;
        if (statuses.includes(node.status)) return node;
        if (Date.now() > deadline) throw new Error(`node ${id} still ${node.status} after ${timeoutMs} ms: ${JSON.stringify(node.metadata)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    async waitForRun(P: string, runId: string, timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { runs } = await call("GET", `/pipelines/${P}/runs`);
        const found = runs.find((r: { id: string }) => r.id === runId);
        if (found && found.status !== "running") return found;
        if (Date.now() > deadline) throw new Error(`run ${runId} still ${found?.status} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 500));
      }
    },
  };
}

const workLines = (c: RunningContainer, msg: string, nodeId: string) => c.logs.filter((l) => l.msg === msg && l.nodeId === nodeId);

// --- the tests -------------------------------------------------------------------------------------------------

describe("the operator walkthrough (deploy/k8s/README.md, deploy/images.md)", () => {
  it("every shell block is run by this test or listed as one that cannot run here, with the reason", () => {
    const unlisted: string[] = [];
    for (const block of [...shellBlocks(README), ...shellBlocks(IMAGES_DOC)]) {
      const entries = WALKTHROUGH_BLOCKS.filter((e) => e.file === block.file && block.text.includes(e.holds));
      if (entries.length !== 1) unlisted.push(`${block.file} (${block.heading}), ${entries.length} entries:\n${block.text}`);
    }
    expect(unlisted, "blocks WALKTHROUGH_BLOCKS (tests/images/walkthrough.ts) does not name exactly once").toEqual([]);
    for (const entry of WALKTHROUGH_BLOCKS) {
      const blocks = shellBlocks(entry.file).filter((b) => b.text.includes(entry.holds));
      expect(blocks, `${entry.file}: one block holds \`${entry.holds}\``).toHaveLength(1);
    }
  });

  // `kubectl apply -k <dir> -l <label>` needs a cluster even with --dry-run=client; its rendering runs here, and
  // the label must select something (kubectl would apply nothing and say so only as "no objects passed to apply").
  it.each(renderCommands().map((r) => [r.file, r.command, r] as const))("%s: `%s` renders", async (_file, _command, render) => {
    const [program, ...args] = render.argv;
    const { stdout } = await exec(program!, args, { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    const rendered = parseYaml(stdout, render.command) as K8sObject[];
    expect(rendered.length, "objects rendered").toBeGreaterThan(0);
    if (render.selector) {
      const { key, value } = render.selector;
      expect(rendered.filter((o) => o.metadata.labels?.[key] === value).length, `objects labelled ${key}=${value}`).toBeGreaterThan(0);
    }
  });
});

describe("images", () => {
  it("deploy/images.md builds exactly these images", () => {
    expect([...DOC_BUILDS.keys()].sort()).toEqual([...IMAGES].sort());
  });

  // deploy/images.md's `docker build` line as `buildah bud`: its -f, --build-arg and context; the local base as
  // NODE_IMAGE (and the machine's CA as the secret `ca`, as the document says for a TLS-intercepting proxy).
  it.each(IMAGES)("%s builds from the repository root on Node 24 and stays within its size", async (name) => {
    const doc = DOC_BUILDS.get(name);
    expect(doc, `deploy/images.md builds ${name}`).toBeDefined();
    const buildSeconds = await buildImage({
      file: doc!.file,
      tag: tagOf(name),
      context: join(ROOT, doc!.context),
      buildArgs: { ...doc!.buildArgs, NODE_IMAGE: BASE_IMAGE },
      logFile: join(ARTIFACTS, `build-${name}.log`),
    });
    const info = await inspectImage(tagOf(name));
    const sizeMb = info.size / 1e6;
    report[name] = { ...report[name], buildSeconds, sizeMb };
    expect(sizeMb, `${name} image size`).toBeLessThanOrEqual(SIZE_LIMIT_MB[name]);
    expect(info.user).toBe("1000:1000");
    expect(info.labels["org.opencontainers.image.title"]).toContain(name);
    expect(info.labels["org.opencontainers.image.version"]).toBeTruthy();
    expect((await shellIn(tagOf(name), "node --version")).trim()).toMatch(/^v24\./);
  });

  it.each(SERVICES)("%s ships compiled JavaScript: no TypeScript source, no transpiler or bundler, no dev dependency", async (service) => {
    const out = await shellIn(
      tagOf(service),
      [
        "cd /app",
        "echo sources: $(find services -name '*.ts' -not -path '*/node_modules/*' | sort | tr '\\n' ' ')",
        "echo packages: $(ls -d packages 2>/dev/null)",
        "echo tools: $(find node_modules -type d \\( -name tsx -o -name typescript -o -name esbuild -o -name vitest -o -name ts-node \\) | sort | tr '\\n' ' ')",
        "echo main: $(ls services/*/dist/main.js services/*/dist/register.js)",
      ].join("; "),
    );
    const line = (key: string) => (new RegExp(`^${key}:(.*)$`, "m").exec(out)?.[1] ?? "").trim();
    expect(line("sources")).toBe("");
    expect(line("packages")).toBe("");
    expect(line("tools")).toBe("");
    expect(line("main")).toBe(`services/${service}/dist/main.js services/${service}/dist/register.js`);
  });

  describe("run as the dev overlay runs them", () => {
    let gateway: { container: RunningContainer; env: Record<string, string> };
    const executors = new Map<Service, RunningContainer>();
    const healthPorts = new Map<Service, number>();

    it("the migration Job's command migrates a fresh database from the gateway image", async () => {
      const job = get(objs, "Job", "vp-migrate");
      const [container] = containers(job);
      const pod = podSpec(job);
      const { env } = containerEnv(objs, container!);
      expect([...env.keys()]).toEqual(["DATABASE_ADMIN_URL"]);
      expect(container!.image).toBe(serviceContainer("gateway").container.image);
      const name = `vp-img-${run}-migrate`;
      const started = await runContainer({
        name,
        image: tagOf("gateway"),
        // The Secret's owner URL in the cluster; the machine's superuser here.
        env: { DATABASE_ADMIN_URL: `postgres://postgres@127.0.0.1:5432/${dbName}` },
        ...securityOf(container!, pod),
        mounts: await mountsOf("migrate", container!, pod),
        command: container!.command,
        logFile: join(ARTIFACTS, `${name}.log`),
      });
      running.set(name, started);
      expect(await started.exited, JSON.stringify(started.logs.slice(-10))).toBe(0);
      expect(started.logs.some((l) => /^Applied \d+ migration\(s\) to vp_img_/.test(String(l.msg)))).toBe(true);
    });

    // The scheduler first: it manages the streams the others wait for (ensureTopology streams: "expect").
    it.each(["scheduler", "state-writer", "executor-ffmpeg", "executor-ai", "gateway"] as const)(
      "%s starts as its Deployment runs it (uid 1000, read-only root, the manifests' mounts) and is ready within 5 s",
      async (service) => {
        const { container, env, readyMs } = await startService(service);
        report[service] = { ...report[service], readyMs };
        if (service === "gateway") gateway = { container, env };
        if (service.startsWith("executor-")) executors.set(service, container);
        if (env.HEALTH_PORT) healthPorts.set(service, Number(env.HEALTH_PORT));
        expect(readyMs, `${service} /ready`).toBeLessThanOrEqual(READY_WITHIN_MS);
      },
    );

    it("the editor image serves the editor", async () => {
      const deployment = get(objs, "Deployment", "web");
      const [container] = containers(deployment);
      const pod = podSpec(deployment);
      const port = await freePort();
      const env = { ...envOf(container!, {}), GATEWAY_URL: `http://127.0.0.1:${gateway.env.PORT}`, PORT: String(port), HOSTNAME: "127.0.0.1" };
      const name = `vp-img-${run}-web`;
      const started = await runContainer({
        name,
        image: tagOf("web"),
        env,
        ...securityOf(container!, pod),
        mounts: await mountsOf("web", container!, pod),
        logFile: join(ARTIFACTS, `${name}.log`),
      });
      running.set(name, started);
      let exited = false;
      void started.exited.then(() => (exited = true));
      const readyMs = await waitForHttpOk(`http://127.0.0.1:${port}/`, name, 60_000, () => !exited);
      report.web = { ...report.web, readyMs };
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain("<html");
      // The page's scripts come from the image's .next/static.
      const script = /src="(\/_next\/static\/[^"]+\.js)"/.exec(html)?.[1];
      expect(script, "a /_next/static script in the page").toBeDefined();
      expect((await fetch(`http://127.0.0.1:${port}${script}`)).status).toBe(200);
      expect(readyMs).toBeLessThanOrEqual(READY_WITHIN_MS);
    });

    it("a pipeline of every node type (npm start's demo) runs through the containers, and every hop is traced (pg and http instrumented in the compiled services)", async () => {
      const client = api(`http://127.0.0.1:${gateway.env.PORT}`);
      // runDemo fails on any node that did not complete or whose output is wrong (type, duration, size, bytes served).
      const result = await runDemo({ apiRoot: client.root, token: await testToken(), log: () => undefined, timeoutMs: 8 * 60_000 });
      for (const [id, node] of result.nodes) expect(node.status, id).toBe("completed");
      // The final composite, read from the storage volume the gateway and executors share, plays: every frame decodes.
      const { stderr } = await exec("ffmpeg", ["-v", "error", "-i", join(scratch, "claims", "vp-storage", "storage", result.finalKey), "-f", "null", "-"]);
      expect(stderr).toBe("");
      // Both executor containers did work, and no node's work completed twice.
      const ffmpegWork = executors.get("executor-ffmpeg")!.logs.filter((l) => l.msg === "work completed" && l.pipelineId === result.pipelineId);
      const aiWork = executors.get("executor-ai")!.logs.filter((l) => l.msg === "work completed" && l.pipelineId === result.pipelineId);
      expect(ffmpegWork.length).toBeGreaterThan(0);
      expect(aiWork.length).toBeGreaterThan(0);
      const ids = [...ffmpegWork, ...aiWork].map((l) => String(l.nodeId));
      expect(ids.length, JSON.stringify(ids)).toBe(new Set(ids).size);
      // render-code served the composition bundled at build time: nothing was bundled in the container.
      expect(executors.get("executor-ffmpeg")!.logs.filter((l) => l.msg === "code animation bundled")).toEqual([]);

      await otlp.waitFor((spans) => spans.some((s) => s.service === "gateway" && s.scope === "@opentelemetry/instrumentation-http" && s.kind === 2), 30_000);
      await otlp.waitFor(
        (spans) =>
          ["gateway", "scheduler", "state-writer"].every((svc) => spans.some((s) => s.service === svc && s.scope === "@opentelemetry/instrumentation-pg")),
        30_000,
      );
    });

    it("deploy/k8s/README.md's first run with curl runs as written: two clips merged into a 4 s video, and its live events start with a snapshot", async () => {
      const dir = join(scratch, "first-run");
      await mkdir(dir, { recursive: true });
      // The block, then the SSE one-liner for a few seconds (it streams until stopped), then the pipeline's id.
      const script = [
        runnableScript(walkthroughBlock("first run"), { "svc/gateway": Number(gateway.env.PORT) }),
        `timeout 5 ${sseCommand()} > events.txt || [ $? -eq 124 ]`,
        `echo "$P" > pipeline-id`,
      ].join("\n");
      await exec("bash", ["-c", script], { cwd: dir, timeout: 5 * 60_000 }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`the first run failed: ${error.message}\nstdout: ${error.stdout}\nstderr: ${error.stderr}`);
      });

      const { stdout } = await exec("ffprobe", ["-v", "error", "-show_entries", "format=duration:stream=codec_type", "-of", "json", join(dir, "merged.mp4")]);
      const probe = JSON.parse(stdout) as { format: { duration: string }; streams: Array<{ codec_type: string }> };
      expect(probe.streams.map((s) => s.codec_type)).toContain("video");
      expect(Number(probe.format.duration)).toBeCloseTo(4, 0);
      expect(await readFile(join(dir, "events.txt"), "utf8")).toMatch(/^event: snapshot$/m);
      // Step 5 finds the run's trace by the traceId of the gateway's `execute queued` line.
      const P = (await readFile(join(dir, "pipeline-id"), "utf8")).trim();
      const queued = gateway.container.logs.find((l) => l.msg === "execute queued" && l.pipelineId === P && l.nodeId === "merge");
      expect(queued?.traceId, "the merge's `execute queued` line carries a traceId").toMatch(/^[0-9a-f]{32}$/);
    });

    it("deploy/k8s/README.md's metrics check runs as written against executor-ffmpeg", async () => {
      const script = runnableScript(walkthroughBlock("metrics"), { "deploy/executor-ffmpeg": healthPorts.get("executor-ffmpeg")! }, 30);
      const { stdout } = await exec("bash", ["-c", script], { timeout: 60_000 });
      expect(stdout).toMatch(/^vp_job_duration_seconds_count\{.*\} [1-9]/m);
    });

    it("an executor stopped with SIGTERM in the middle of a job loses nothing: the job completes once", async () => {
      const client = api(`http://127.0.0.1:${gateway.env.PORT}`);
      const { pipeline } = await client.call("POST", "/pipelines", { title: "Images: SIGTERM mid-job" });
      const P = pipeline.id as string;
      const code = Array.from({ length: 8 }, (_, i) => `const step${i} = await pipeline.node("n${i}").execute();`).join("\n");
      await client.call("POST", `/pipelines/${P}/nodes`, {
        id: "long",
        title: "long",
        type: "render-code",
        config: { code, language: "typescript", typingSpeed: 40, width: 320, height: 180, fps: 15 },
      });
      await client.call("POST", `/pipelines/${P}/nodes/long/execute`);

      const first = executors.get("executor-ffmpeg")!;
      await first.waitForLog((l) => l.msg === "work started" && l.nodeId === "long" && l.pipelineId === P, 120_000);
      await first.signal("SIGTERM");
      // Under the manifest's SHUTDOWN_GRACE_MS the running job finishes (or is handed back), then node exits 0.
      const code0 = await Promise.race([first.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 150_000))]);
      expect(code0, JSON.stringify(first.logs.slice(-10))).toBe(0);

      // The Deployment's replacement pod.
      const { container: second, readyMs } = await startService("executor-ffmpeg");
      const node = await client.waitForNode(P, "long", ["completed", "failed"], 240_000);
      expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
      // Give a duplicate delivery time to show itself, then count: exactly one completed work for the node.
      await new Promise((r) => setTimeout(r, 3000));
      const completed = [...workLines(first, "work completed", "long"), ...workLines(second, "work completed", "long")].filter((l) => l.pipelineId === P);
      expect(completed).toHaveLength(1);
      expect((await client.node(P, "long")).output).toMatchObject({ type: "video", width: 320, height: 180 });
      expect(readyMs, "the replacement's /ready").toBeLessThanOrEqual(READY_WITHIN_MS);
    });
  });
});
