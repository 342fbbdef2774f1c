/**
 * The Dockerfiles, read without building (tests/images builds and runs them): one pattern for the five services
 * (deploy/Dockerfile.service, SERVICE names the service) and web/Dockerfile; Node 24 pinned by exact tag; a
 * non-root numeric user; compiled JavaScript and production dependencies only in what ships; the system packages
 * each executor needs; a registry CA only as a build secret; and a .dockerignore that keeps local state out.
 * The bundle step itself runs here too: every service compiles with the compiler options the tests use.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "./k8s";

const SERVICES = ["gateway", "scheduler", "state-writer", "executor-ffmpeg", "executor-ai"] as const;
const SERVICE_DOCKERFILE = "deploy/Dockerfile.service";
const DOCKERFILES = [SERVICE_DOCKERFILE, "web/Dockerfile"];

interface Stage {
  name?: string;
  image: string;
  lines: string[];
}

/** Instructions (continuation lines joined, comments dropped), the ARG defaults before the first FROM, and the stages. */
function parseDockerfile(path: string): { args: Record<string, string>; stages: Stage[] } {
  const text = readFileSync(join(ROOT, path), "utf8");
  const instructions = text
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of instructions) {
    const from = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) {
      stages.push({ image: from[1]!, name: from[2], lines: [] });
      continue;
    }
    const arg = /^ARG\s+(\w+)(?:=(\S+))?$/i.exec(line);
    if (arg && stages.length === 0) args[arg[1]!] = arg[2] ?? "";
    stages.at(-1)?.lines.push(line);
  }
  return { args, stages };
}

const stageNamed = (stages: Stage[], name: string) => {
  const stage = stages.find((s) => s.name === name);
  expect(stage, `stage ${name}`).toBeDefined();
  return stage!;
};

describe.each(DOCKERFILES)("%s", (path) => {
  const { args, stages } = parseDockerfile(path);
  const final = stages.at(-1)!;
  const text = readFileSync(join(ROOT, path), "utf8");

  it("builds on the official Node 24 LTS image, pinned by exact version tag (Node 20 is past its end of life)", () => {
    expect(args.NODE_IMAGE).toMatch(/^node:24\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/);
    const names = new Set<string>();
    for (const stage of stages) {
      // Every stage starts from NODE_IMAGE or from an earlier stage: one base to pin, one to swap for a local build.
      const base = stage.image.replace(/\$\{SERVICE\}/, "<service>");
      expect(stage.image === "${NODE_IMAGE}" || names.has(base) || /^system-<service>$/.test(base), `FROM ${stage.image}`).toBe(true);
      if (stage.name) names.add(stage.name);
    }
    expect(text, "say that production pins by digest").toMatch(/digest/);
  });

  it("runs as a non-root, numeric user (so Kubernetes' runAsNonRoot can verify it)", () => {
    const user = final.lines.filter((l) => /^USER\s/i.test(l)).at(-1);
    expect(user, "USER in the final stage").toBe("USER 1000:1000");
  });

  it("ships no install step, no transpiler and no TypeScript entry point", () => {
    expect(
      final.lines.some((l) => /npm (ci|install)\b/.test(l)),
      "no install in the final stage",
    ).toBe(false);
    const cmd = JSON.parse(final.lines.find((l) => /^CMD\s/i.test(l))!.replace(/^CMD\s+/i, "")) as string[];
    expect(cmd.join(" ")).not.toMatch(/tsx|\.ts\b/);
    expect(
      final.lines.filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l)),
      "the final stage copies only from build stages",
    ).toEqual([]);
  });

  it("carries OCI labels and a registry CA only as a build secret", () => {
    for (const label of ["title", "version", "revision", "base.name"]) expect(final.lines.join("\n")).toContain(`org.opencontainers.image.${label}=`);
    for (const line of stages.flatMap((s) => s.lines).filter((l) => /npm (ci|install)\b/.test(l))) {
      expect(line).toContain("--mount=type=secret,id=ca");
      expect(line).toContain("NODE_EXTRA_CA_CERTS=/run/secrets/ca");
    }
    expect(text).not.toMatch(/^(ENV|ARG)\s+NODE_EXTRA_CA_CERTS/m);
  });

  it("has no HEALTHCHECK (Kubernetes probes the services)", () => {
    expect(stages.flatMap((s) => s.lines).some((l) => /^HEALTHCHECK\s/i.test(l))).toBe(false);
  });
});

describe(`${SERVICE_DOCKERFILE}: one pattern for every service`, () => {
  const { args, stages } = parseDockerfile(SERVICE_DOCKERFILE);
  const final = stages.at(-1)!;

  it("is the only service Dockerfile, and no service carries tsx as a production dependency", () => {
    expect(args).toHaveProperty("SERVICE");
    for (const service of SERVICES) {
      expect(existsSync(join(ROOT, `services/${service}/Dockerfile`)), `services/${service}/Dockerfile`).toBe(false);
      const pkg = JSON.parse(readFileSync(join(ROOT, `services/${service}/package.json`), "utf8")) as { dependencies: Record<string, string> };
      expect(pkg.dependencies.tsx, `${service} dependencies.tsx`).toBeUndefined();
    }
  });

  it("installs production dependencies of the one service into the runtime image, without the workspace links", () => {
    const deps = stageNamed(stages, "deps");
    const install = deps.lines.find((l) => /npm ci\b/.test(l))!;
    expect(install).toMatch(/--omit=dev/);
    expect(install).toContain('--workspace "@vp/${SERVICE}"');
    expect(install).toContain("rm -rf node_modules/@vp");
    expect(final.lines).toContain("COPY --from=deps /app/node_modules ./node_modules");
  });

  it("compiles with the root tsconfig.json (Nest's parameter decorators need experimentalDecorators) and esbuild at the lockfile's version", () => {
    const build = stageNamed(stages, "build");
    expect(build.lines).toContain("COPY tsconfig.json ./");
    expect(build.lines.some((l) => l.includes("node /tools/bundle-service.mjs"))).toBe(true);
    const tsconfig = JSON.parse(readFileSync(join(ROOT, "tsconfig.json"), "utf8")) as { compilerOptions: Record<string, unknown> };
    expect(tsconfig.compilerOptions.experimentalDecorators).toBe(true);
    const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string }> };
    const pinned = build.lines.map((l) => /^ARG ESBUILD_VERSION=(\S+)$/.exec(l)?.[1]).find(Boolean);
    expect(pinned).toBe(lock.packages["node_modules/esbuild"]?.version);
    expect(final.lines).toContain("COPY --from=build /out ./services/${SERVICE}");
  });

  it("starts node on the compiled entry with the telemetry preload, under tini", () => {
    expect(final.image).toBe("system-${SERVICE}");
    expect(final.lines).toContain("WORKDIR /app/services/${SERVICE}");
    expect(final.lines).toContain('ENTRYPOINT ["/usr/bin/tini", "--"]');
    // register.js starts OpenTelemetry before main.js's imports load pg (see packages/telemetry/src/register.ts).
    expect(final.lines).toContain('CMD ["node", "--enable-source-maps", "--import", "./dist/register.js", "dist/main.js"]');
  });

  it("gives executor-ffmpeg the code animation bundled at build time, and keeps Remotion's bundler out of production dependencies", () => {
    const system = stageNamed(stages, "system-executor-ffmpeg");
    expect(system.lines).toContain("COPY --from=composition /out/code-animation /app/code-animation");
    expect(system.lines).toContain("ENV CODE_ANIMATION_BUNDLE=/app/code-animation");
    expect(stageNamed(stages, "composition").lines.some((l) => l.includes("node scripts/bundle-code-animation.mjs /out/code-animation"))).toBe(true);
    for (const pkg of ["packages/code-animation", "services/executor-ffmpeg"]) {
      const manifest = JSON.parse(readFileSync(join(ROOT, pkg, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
      expect(manifest.dependencies?.["@remotion/bundler"], `${pkg} dependencies`).toBeUndefined();
    }
    expect(readFileSync(join(ROOT, "packages/code-animation/src/render.ts"), "utf8")).not.toMatch(/^import .* from "@remotion\/bundler"/m);
  });

  it.each(SERVICES)("has the system packages %s needs", (service) => {
    const needs: Record<(typeof SERVICES)[number], string[]> = {
      gateway: ["tini"],
      scheduler: ["tini"],
      "state-writer": ["tini"],
      "executor-ffmpeg": ["tini", "ffmpeg", "chromium", "util-linux"],
      "executor-ai": ["tini", "ffmpeg", "espeak-ng", "util-linux"],
    };
    // Follow system-<service> back through stages built FROM another stage.
    let stage: Stage | undefined = stageNamed(stages, `system-${service}`);
    const apt: string[] = [];
    while (stage) {
      apt.push(...stage.lines.filter((l) => /apt-get install/.test(l)));
      const parent: string = stage.image;
      stage = stages.find((s) => s.name === parent);
    }
    const words = apt.join(" ").split(/\s+/);
    for (const pkg of needs[service]) expect(words, pkg).toContain(pkg);
    expect(apt.join(" ")).toMatch(/--no-install-recommends/);
    expect(apt.join(" ")).toMatch(/rm -rf \/var\/lib\/apt\/lists/);
  });
});

describe("web/Dockerfile", () => {
  const { stages } = parseDockerfile("web/Dockerfile");
  const final = stages.at(-1)!;

  it("ships Next.js' standalone output (server.js and the files it traces), not node_modules", () => {
    expect(readFileSync(join(ROOT, "web/next.config.mjs"), "utf8")).toMatch(/output:\s*"standalone"/);
    expect(final.lines).toContain("COPY --from=build /app/web/.next/standalone ./");
    expect(final.lines).toContain("COPY --from=build /app/web/.next/static ./web/.next/static");
    expect(final.lines.find((l) => /^CMD\s/i.test(l))).toBe('CMD ["node", "server.js"]');
  });
});

describe("scripts/bundle-service.mjs", () => {
  const out = mkdtempSync(join(tmpdir(), "vp-bundle-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it.each(SERVICES)("compiles %s to JavaScript that imports no workspace source and no TypeScript loader", (service) => {
    execFileSync(process.execPath, ["scripts/bundle-service.mjs", service, join(out, service)], { cwd: ROOT, stdio: "pipe", timeout: 60_000 });
    const dist = join(out, service, "dist");
    const files = readdirSync(dist).filter((f) => f.endsWith(".js"));
    expect(files).toEqual(expect.arrayContaining(["main.js", "register.js", ...(service === "gateway" ? ["migrate.js"] : [])]));
    for (const file of files) {
      const code = readFileSync(join(dist, file), "utf8");
      expect(code, file).not.toMatch(/from\s*"@vp\//);
      expect(code, file).not.toMatch(/from\s*"tsx/);
    }
    // Legacy decorators compiled (Nest's @Inject on constructor parameters), not left as syntax node cannot parse.
    if (service !== "gateway") expect(readFileSync(join(dist, "main.js"), "utf8")).toMatch(/__decorateParam|__decorate/);
    if (service === "gateway") expect(readdirSync(join(out, service, "migrations")).some((f) => f.endsWith(".sql"))).toBe(true);
  });
});

describe(".dockerignore", () => {
  it("keeps installed modules, VCS, local data, builds and env files out of the context", () => {
    const lines = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split(/\r?\n/)
      .map((l) => l.trim());
    for (const pattern of ["**/node_modules", ".git", ".data", "**/.next", ".env"]) expect(lines, pattern).toContain(pattern);
    // What the images need must stay in: every workspace manifest, the lockfile, the compiler options and the bundle script.
    for (const needed of ["package.json", "package-lock.json", "tsconfig.json", "packages", "services", "web", "lambdas", "scripts"]) {
      expect(lines, `${needed} must not be ignored`).not.toContain(needed);
    }
  });
});
