/**
 * The operator walkthrough (deploy/k8s/README.md) and the image instructions (deploy/images.md) as the images
 * test runs them: their ```sh blocks and inline commands are read from the documents, so a wrong step in a
 * document fails the test. What cannot run without a cluster is listed in WALKTHROUGH_BLOCKS with the reason.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../deploy/k8s";

export const README = "deploy/k8s/README.md";
export const IMAGES_DOC = "deploy/images.md";

export interface ShellBlock {
  file: string;
  /** The nearest heading above the block. */
  heading: string;
  text: string;
}

const read = (file: string) => readFileSync(join(ROOT, file), "utf8");

/** Every ```sh block of a document, dedented to its fence. */
export function shellBlocks(file: string): ShellBlock[] {
  const blocks: ShellBlock[] = [];
  let heading = "";
  let open: { indent: number; lines: string[] } | null = null;
  for (const line of read(file).split("\n")) {
    if (open) {
      if (/^\s*```\s*$/.test(line)) {
        blocks.push({ file, heading, text: open.lines.join("\n") });
        open = null;
      } else open.lines.push(line.slice(Math.min(open.indent, line.length - line.trimStart().length)));
      continue;
    }
    const fence = /^(\s*)```sh\s*$/.exec(line);
    if (fence) open = { indent: fence[1]!.length, lines: [] };
    else if (/^#+ /.test(line)) heading = line.replace(/^#+ /, "");
  }
  return blocks;
}

/**
 * Every ```sh block of the two documents, named by a command it holds: `run` says which test runs it, `skip` what
 * of it does not run here and why (a cluster, a registry or a tool this machine lacks).
 */
export const WALKTHROUGH_BLOCKS: Array<{ file: string; holds: string; run?: "build" | "first run" | "metrics"; skip?: string }> = [
  { file: README, holds: "metrics-server/releases", skip: "cluster-only: installs metrics-server into the cluster" },
  { file: README, holds: "kustomize edit set image", skip: "the standalone kustomize CLI is not on this machine (kubectl carries only `kustomize build`)" },
  { file: README, holds: "cloudnative-pg", skip: "cluster-only: installs the CloudNativePG operator" },
  { file: README, holds: "helm install keda", skip: "cluster-only: installs KEDA with Helm" },
  { file: README, holds: "for role in editor state-writer reader", skip: "cluster-only: creates and labels Secrets" },
  { file: README, holds: "secret generic vp-db-editor --type", skip: "cluster-only: what the loop above creates (password elided)" },
  { file: README, holds: "secret generic vp-provider-keys", skip: "cluster-only: creates a Secret" },
  { file: README, holds: "secret generic vp-gateway-auth", skip: "cluster-only: creates a Secret" },
  { file: README, holds: "secret generic vp-web-oidc", skip: "cluster-only: creates a Secret" },
  { file: README, holds: "for s in gateway scheduler state-writer executor-ffmpeg executor-ai; do\n  kubectl", skip: "cluster-only: creates Secrets" },
  { file: README, holds: "secret generic vp-nats-gateway --from-literal=password=…", skip: "cluster-only: what the loop above creates (password elided)" },
  {
    file: README,
    holds: "-l vp-stage=platform",
    skip: "cluster-only: kubectl apply and wait need an API server (apply --dry-run=client too); each `-k` directory and label is rendered by the render test",
  },
  { file: README, holds: "port-forward svc/gateway", run: "first run", skip: "kubectl port-forward: replaced by setting PORT to the gateway container's port" },
  { file: README, holds: "port-forward svc/jaeger", skip: "cluster-only: no Jaeger here; the images test checks the spans reach its OTLP receiver" },
  { file: README, holds: "logs deploy/gateway", skip: "cluster-only: reads pod logs (the test checks the gateway's `execute queued` line carries a traceId)" },
  {
    file: README,
    holds: "port-forward deploy/executor-ffmpeg",
    run: "metrics",
    skip: "kubectl port-forward: replaced by setting PORT to executor-ffmpeg's health port",
  },
  { file: README, holds: "nats-box", skip: "cluster-only: reads a Secret and runs a pod" },
  { file: README, holds: "rollout restart statefulset/nats", skip: "cluster-only: replaces a Secret and restarts workloads" },
  {
    file: IMAGES_DOC,
    holds: "docker build",
    run: "build",
    skip: "docker push: needs a registry; docker build runs as buildah bud with the same -f, --build-arg and context, tagged for the test",
  },
  { file: IMAGES_DOC, holds: "kustomize edit set image", skip: "the standalone kustomize CLI is not on this machine (kubectl carries only `kustomize build`)" },
];

export function walkthroughBlock(run: "build" | "first run" | "metrics"): ShellBlock {
  const entry = WALKTHROUGH_BLOCKS.find((b) => b.run === run)!;
  const found = shellBlocks(entry.file).filter((b) => b.text.includes(entry.holds));
  if (found.length !== 1) throw new Error(`${entry.file}: ${found.length} shell blocks hold \`${entry.holds}\`, expected one`);
  return found[0]!;
}

/** `\`-continued lines joined; blank lines dropped. */
export function logicalLines(text: string): string[] {
  return text
    .replace(/\\\n\s*/g, "")
    .split("\n")
    .filter((l) => l.trim() !== "");
}

// --- render ----------------------------------------------------------------------------------------------------

export interface RenderCommand {
  file: string;
  /** The command as the document writes it (its render part, without a pipe into kubectl apply). */
  command: string;
  dir: string;
  /**
   * What runs: the command itself for `kubectl kustomize`; `kubectl kustomize <dir>` for `kustomize build <dir>`
   * (kubectl carries the same kustomize; the standalone CLI is not on this machine) and for `kubectl apply -k`.
   */
  argv: string[];
  /** An `-l key=value` the document applies the rendering with. */
  selector?: { key: string; value: string };
}

/**
 * Every render the documents show, in blocks or inline: `kubectl kustomize <dir>`, `kustomize build <dir>`, and
 * the directory (and label) of every `kubectl apply -k <dir>`. Placeholders (`…`, `<…>`) are not directories.
 */
export function renderCommands(): RenderCommand[] {
  const out: RenderCommand[] = [];
  for (const file of [README, IMAGES_DOC]) {
    const text = read(file).replace(/\\\n\s*/g, "");
    for (const m of text.matchAll(/(kubectl kustomize|kustomize build)\s+([^\s`|;&)]+)/g)) {
      if (/[…<]/.test(m[2]!)) continue;
      out.push({ file, command: `${m[1]} ${m[2]}`, dir: m[2]!, argv: ["kubectl", "kustomize", m[2]!] });
    }
    for (const m of text.matchAll(/kubectl apply -k\s+([^\s`|;&)]+)(?:\s+-l\s+([\w./-]+)=([\w.-]+))?/g)) {
      if (/[…<]/.test(m[1]!)) continue;
      out.push({ file, command: m[0], dir: m[1]!, argv: ["kubectl", "kustomize", m[1]!], selector: m[2] ? { key: m[2], value: m[3]! } : undefined });
    }
  }
  return out;
}

// --- build -----------------------------------------------------------------------------------------------------

export interface DocBuild {
  image: string;
  /** Dockerfile, relative to the context. */
  file: string;
  /** Relative to the repository root (the documents' commands run from it). */
  context: string;
  buildArgs: Record<string, string>;
  /** The `docker build` line as written. */
  command: string;
}

/**
 * The images deploy/images.md builds: each `docker build` line of its build block, for every value of the loop
 * around it, its words expanded by bash from the repository root (so `$s`, `$VERSION`, `$(git rev-parse HEAD)`
 * mean what they mean to the operator). The image is the last path segment of the `-t` name.
 */
export function docBuilds(): DocBuild[] {
  const lines = logicalLines(walkthroughBlock("build").text).map((l) => l.trim());
  const assignments = lines.filter((l) => /^[A-Z_]+=/.test(l));
  const loops: Array<{ name: string; values: string[] }> = [];
  const builds: DocBuild[] = [];
  for (const line of lines) {
    const loop = /^for (\w+) in (.+); do$/.exec(line);
    if (loop) loops.push({ name: loop[1]!, values: loop[2]!.split(/\s+/) });
    else if (/^done\b/.test(line)) loops.pop();
    else if (line.startsWith("docker build ")) {
      const words = line.slice("docker build ".length);
      const loop = loops.at(-1);
      for (const value of loop ? loop.values : [undefined]) {
        const script = [...assignments, loop ? `${loop.name}=${value}` : "", `set -- ${words}`, `printf '%s\\0' "$@"`].join("\n");
        const argv = execFileSync("bash", ["-c", script], { cwd: ROOT, encoding: "utf8" }).split("\0").slice(0, -1);
        builds.push({ ...dockerBuildArgs(argv), command: line });
      }
    }
  }
  return builds;
}

/** The `docker build` flags the document uses; any other flag is an error, so a new one gets a translation. */
function dockerBuildArgs(argv: string[]): Omit<DocBuild, "command"> {
  let file = "Dockerfile";
  let tag = "";
  const buildArgs: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-f") file = argv[++i]!;
    else if (arg === "-t") tag = argv[++i]!;
    else if (arg === "--build-arg") {
      const [k, ...v] = argv[++i]!.split("=");
      buildArgs[k!] = v.join("=");
    } else if (arg.startsWith("-")) throw new Error(`docker build ${arg}: no buildah translation in tests/images/walkthrough.ts`);
    else positional.push(arg);
  }
  if (positional.length !== 1) throw new Error(`docker build ${argv.join(" ")}: expected one context, got ${JSON.stringify(positional)}`);
  const image = /([^/:]+)(:[^/]*)?$/.exec(tag)?.[1];
  if (!image) throw new Error(`docker build ${argv.join(" ")}: no image name in -t`);
  return { image, file, context: positional[0]!, buildArgs };
}

// --- run -------------------------------------------------------------------------------------------------------

/**
 * A walkthrough block as a bash script for this machine: `set -euo pipefail` (a failing step stops it), each
 * `kubectl … port-forward <target> $VAR:<port> &` line replaced by `VAR=<the container's port>`, and each line
 * marked `# repeat until "<value>"` repeated (every 0.5 s, at most `repeatSeconds`) until it prints `"<value>"`.
 * Every other line runs as written.
 */
export function runnableScript(block: ShellBlock, ports: Record<string, number>, repeatSeconds = 120): string {
  const lines = block.text.split("\n").map((line) => {
    if (/^\s*kubectl\b.*\bport-forward\b/.test(line)) {
      const forward = /^\s*kubectl .*\bport-forward\s+(\S+)\s+\$(\w+):\d+\s*&\s*(#.*)?$/.exec(line);
      if (!forward) throw new Error(`${block.file}: the port-forward line must name its local port with a variable (\`$PORT:<port> &\`): ${line}`);
      const port = ports[forward[1]!];
      if (port === undefined) throw new Error(`${block.file}: no container for ${forward[1]}`);
      return `${forward[2]}=${port}`;
    }
    const repeat = /^(\s*)(.+?)\s+# repeat until "([^"]+)"/.exec(line);
    if (repeat) {
      const [, indent = "", command = "", value = ""] = repeat;
      const expected = `'"${value}"'`;
      return `${indent}for _ in $(seq ${repeatSeconds * 2}); do _out=$(${command}); [ "$_out" = ${expected} ] && break; sleep 0.5; done; echo "$_out"; [ "$_out" = ${expected} ] || { echo "not ${value} after ${repeatSeconds} s: ${command.replaceAll('"', '\\"').replaceAll("$", "\\$")}" >&2; exit 1; }`;
    }
    return line;
  });
  return ["set -euo pipefail", ...lines].join("\n");
}

/** The README's live-events one-liner (inline, after the first-run block). */
export function sseCommand(): string {
  const command = /`(curl -N "\$API\/pipelines\/\$P\/events[^`]+)`/.exec(read(README))?.[1];
  if (!command) throw new Error(`${README}: no \`curl -N "$API/pipelines/$P/events…"\` one-liner`);
  return command;
}
