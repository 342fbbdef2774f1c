/**
 * The images, checked without a Docker engine: one multi-stage Dockerfile per service and for web, pinned
 * base images, a non-root user, production dependencies only in what ships, the system packages each
 * executor needs, and a .dockerignore that keeps local state out of the build context.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./k8s";

const SERVICES = ["gateway", "scheduler", "state-writer", "executor-ffmpeg", "executor-ai"] as const;
const DOCKERFILES = [...SERVICES.map((s) => `services/${s}/Dockerfile`), "web/Dockerfile"];

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
    const arg = /^ARG\s+(\w+)=(\S+)$/i.exec(line);
    if (arg && stages.length === 0) args[arg[1]!] = arg[2]!;
    stages.at(-1)?.lines.push(line);
  }
  return { args, stages };
}

const resolveImage = (image: string, args: Record<string, string>) => image.replace(/\$\{?(\w+)\}?/g, (_, name: string) => args[name] ?? `<unset ${name}>`);

describe.each(DOCKERFILES)("%s", (path) => {
  const { args, stages } = parseDockerfile(path);
  const final = stages.at(-1)!;

  it("is multi-stage, on pinned base images (a version tag or a digest, never latest or untagged)", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const names = new Set<string>();
    for (const stage of stages) {
      if (!names.has(stage.image)) {
        const image = resolveImage(stage.image, args);
        expect(image, `FROM ${stage.image}`).toMatch(/^[\w./-]+(:\d[\w.-]*|@sha256:[0-9a-f]{64})$/);
        expect(image).not.toMatch(/:latest$/);
      }
      if (stage.name) names.add(stage.name);
    }
    expect(readFileSync(join(ROOT, path), "utf8"), "say that production pins by digest").toMatch(/digest/);
  });

  it("runs as a non-root, numeric user (so Kubernetes' runAsNonRoot can verify it)", () => {
    const user = final.lines.filter((l) => /^USER\s/i.test(l)).at(-1);
    expect(user, "USER in the final stage").toBeDefined();
    const id = user!.split(/\s+/)[1]!.split(":")[0]!;
    expect(id).toMatch(/^\d+$/);
    expect(Number(id)).toBeGreaterThan(0);
  });

  it("ships only production dependencies (the stage node_modules come from ran `npm ci --omit=dev`)", () => {
    const copy = final.lines.find((l) => /^COPY\s+--from=\S+\s+\/app\s+\.\/?$/i.test(l));
    expect(copy, "the final stage copies /app (node_modules) from a dependency stage").toBeDefined();
    const from = /--from=(\S+)/.exec(copy!)![1];
    const deps = stages.find((s) => s.name === from)!;
    const install = deps.lines.find((l) => /npm ci\b/.test(l));
    expect(install, `stage ${from} runs npm ci`).toBeDefined();
    expect(install).toMatch(/--omit=dev/);
    expect(final.lines.some((l) => /npm (ci|install)\b/.test(l)), "no install in the final stage").toBe(false);
  });

  it("copies only sources that exist", () => {
    for (const line of final.lines.filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))) {
      const [, source] = line.split(/\s+/);
      expect(existsSync(join(ROOT, source!)), line).toBe(true);
    }
  });

  it("has no HEALTHCHECK (Kubernetes probes the services)", () => {
    expect(stages.flatMap((s) => s.lines).some((l) => /^HEALTHCHECK\s/i.test(l))).toBe(false);
  });
});

describe.each(SERVICES)("services/%s image", (service) => {
  const { stages } = parseDockerfile(`services/${service}/Dockerfile`);
  const final = stages.at(-1)!;
  const pkg = JSON.parse(readFileSync(join(ROOT, `services/${service}/package.json`), "utf8")) as { name: string; dependencies: Record<string, string> };

  it("installs this workspace's production dependencies, tsx among them, and runs main.ts under tsx", () => {
    const install = stages.flatMap((s) => s.lines).find((l) => /npm ci\b/.test(l))!;
    expect(install).toContain(`--workspace ${pkg.name}`);
    // tsx is the loader the service runs under in production: a production dependency, not a dev one.
    expect(pkg.dependencies.tsx, `${service}/package.json dependencies.tsx`).toBeDefined();
    const cmd = final.lines.find((l) => /^CMD\s/i.test(l))!;
    // register.ts starts OpenTelemetry before main.ts's imports load pg (see packages/telemetry/src/register.ts).
    expect(JSON.parse(cmd.replace(/^CMD\s+/i, ""))).toEqual(["node", "--import", "tsx", "--import", "./packages/telemetry/src/register.ts", `services/${service}/src/main.ts`]);
    expect(existsSync(join(ROOT, `services/${service}/src/main.ts`))).toBe(true);
  });

  it("carries the system packages its work needs", () => {
    const apt = final.lines.filter((l) => /apt-get install/.test(l)).join(" ");
    const needs: Record<string, string[]> = {
      "executor-ffmpeg": ["ffmpeg", "chromium", "util-linux"],
      "executor-ai": ["ffmpeg", "espeak-ng", "util-linux"],
    };
    for (const pkgName of needs[service] ?? []) expect(apt.split(/\s+/), pkgName).toContain(pkgName);
    if (needs[service]) expect(apt).toMatch(/rm -rf \/var\/lib\/apt\/lists/);
  });
});

describe("the gateway image runs the migration", () => {
  it("carries packages/db (the migration Job runs packages/db/src/cli.ts in it)", () => {
    const { stages } = parseDockerfile("services/gateway/Dockerfile");
    expect(stages.at(-1)!.lines).toContain("COPY packages ./packages");
    expect(existsSync(join(ROOT, "packages/db/src/cli.ts"))).toBe(true);
  });
});

describe(".dockerignore", () => {
  it("keeps installed modules, VCS, local data, builds and env files out of the context", () => {
    const lines = readFileSync(join(ROOT, ".dockerignore"), "utf8").split(/\r?\n/).map((l) => l.trim());
    for (const pattern of ["**/node_modules", ".git", ".data", "**/.next", ".env"]) expect(lines, pattern).toContain(pattern);
    // What the images need must stay in: every workspace manifest and the lockfile.
    for (const needed of ["package.json", "package-lock.json", "packages", "services", "web", "lambdas"]) {
      expect(lines, `${needed} must not be ignored`).not.toContain(needed);
    }
  });
});
