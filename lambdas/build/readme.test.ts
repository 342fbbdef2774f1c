/**
 * lambdas/README.md's shell blocks are run, so the README cannot drift from what works. Every command of its ```sh
 * blocks is extracted (continuation lines joined, heredocs kept whole) and classified by its programs: `aws` commands
 * need an account and are only checked against the CLI reference; everything else runs here, in order, in a temporary
 * directory (npm scripts at the repository's root), and its results are checked.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { copyFile, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FUNCTIONS } from "./build";
import { listZip } from "./zip";

const exec = promisify(execFile);

const LAMBDAS = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = resolve(LAMBDAS, "..");
const README = join(LAMBDAS, "README.md");

// Lambda quotas for a .zip deployment package: 50 MB zipped when uploaded directly, 250 MB unzipped (function and
// layers together). Decimal megabytes: the stricter reading.
const ZIPPED_LIMIT = 50 * 1000 * 1000;
const UNZIPPED_LIMIT = 250 * 1000 * 1000;

interface ShellCommand {
  /** The command as written (continuation lines and heredoc body included): what bash runs. */
  text: string;
  /** Continuation lines joined, heredoc body left out: what is classified. */
  line: string;
  programs: string[];
  kind: "aws" | "runnable" | "mixed";
}

/** The ```sh blocks of a markdown file, each dedented by its fence's indentation. */
function shellBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, info] = open;
    const body: string[] = [];
    for (i++; i < lines.length && !/^ *```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.replace(new RegExp(`^ {0,${indent!.length}}`), ""));
    if (info === "sh") blocks.push(body.join("\n"));
    else if (/^(bash|shell|console|zsh|shell-session)$/.test(info!)) throw new Error(`lambdas/README.md has a \`\`\`${info} block: use \`\`\`sh so it is run`);
  }
  return blocks;
}

/** Removes quoted strings and comments, leaving the words that name programs and flags. */
function unquoted(line: string): string {
  return line.replace(/'[^']*'|"(?:[^"\\]|\\.)*"/g, "''").replace(/(^|\s)#.*$/gm, "$1");
}

/** Splits a block into commands: a line ending in `\` or inside an open quote continues; a heredoc runs to its terminator. */
function shellCommands(block: string): ShellCommand[] {
  const lines = block.split("\n");
  const commands: ShellCommand[] = [];
  let current: string[] = [];
  let quote: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    current.push(text);
    for (let c = 0; c < text.length; c++) {
      const ch = text[c]!;
      if (quote) {
        if (ch === quote) quote = null;
        else if (ch === "\\" && quote === '"') c++;
      } else if (ch === "'" || ch === '"') quote = ch;
      else if (ch === "\\") c++;
      else if (ch === "#" && (c === 0 || /\s/.test(text[c - 1]!))) break;
    }
    if (quote || /\\$/.test(unquoted(text).trimEnd())) continue;
    const line = current.join("\n").replace(/\\\n\s*/g, " ");
    const heredoc = /<<-?\s*(['"]?)(\w+)\1/.exec(line);
    if (heredoc) {
      for (i++; i < lines.length && lines[i]!.trim() !== heredoc[2]; i++) current.push(lines[i]!);
      current.push(lines[i] ?? "");
    }
    if (unquoted(line).trim()) commands.push(classify(current.join("\n"), line.trim()));
    current = [];
  }
  if (current.length > 0 || quote) throw new Error(`unterminated command in lambdas/README.md: ${current.join("\n")}`);
  return commands;
}

function classify(text: string, line: string): ShellCommand {
  const programs = unquoted(line)
    .split(/&&|\|\||[;|()]/)
    .map((part) =>
      part
        .trim()
        .split(/\s+/)
        .find((word) => word && !/^\w+=/.test(word)),
    )
    .filter((program): program is string => Boolean(program));
  const aws = programs.filter((p) => p === "aws").length;
  return { text, line, programs, kind: aws === 0 ? "runnable" : aws === programs.length ? "aws" : "mixed" };
}

const commands = shellBlocks(readFileSync(README, "utf8")).flatMap(shellCommands);
const runnable = commands.filter((c) => c.kind === "runnable");
const awsOnly = commands.filter((c) => c.kind === "aws");

/**
 * The AWS CLI v2 flags of the `aws lambda` subcommands the README uses (plus the global options), as read on
 * 2026-12-07 in:
 * - docs.aws.amazon.com/cli/latest/reference/lambda/wait/function-updated.html (synopsis, with the global options);
 * - docs.aws.amazon.com/goto/cli2/lambda-2015-03-31/UpdateFunctionCode (synopsis);
 * - docs.aws.amazon.com/cli/latest/reference/lambda/update-function-configuration.html (synopsis);
 * - publish-layer-version: docs.aws.amazon.com/cli/v1/reference/lambda/publish-layer-version.html (the v2 page was
 *   not found) and docs.aws.amazon.com/lambda/latest/api/API_PublishLayerVersion.html (the same request members);
 * - create-function: the v2 reference page's synopsis could not be read, so from the CLI v2's own sources, which
 *   generate it: the CreateFunctionRequest members in aws/aws-cli awscli/botocore/data/lambda/2015-03-31/service-2.json
 *   (commit 0b47ccd8) and awscli/customizations/awslambda.py (commit 0130e1d4), which adds --zip-file to
 *   create-function and publish-layer-version.
 * The synopses of update-function-code and update-function-configuration were read only as far as the flags below.
 */
const GLOBAL_FLAGS = [
  "--cli-input-json",
  "--cli-input-yaml",
  "--generate-cli-skeleton",
  "--debug",
  "--endpoint-url",
  "--no-verify-ssl",
  "--no-paginate",
  "--output",
  "--query",
  "--profile",
  "--region",
  "--version",
  "--color",
  "--no-sign-request",
  "--ca-bundle",
  "--cli-read-timeout",
  "--cli-connect-timeout",
  "--cli-binary-format",
  "--no-cli-pager",
  "--cli-auto-prompt",
  "--no-cli-auto-prompt",
];
const LAMBDA_FLAGS: Record<string, string[]> = {
  "create-function": [
    "--function-name",
    "--runtime",
    "--role",
    "--handler",
    "--code",
    "--zip-file",
    "--description",
    "--timeout",
    "--memory-size",
    "--publish",
    "--no-publish",
    "--publish-to",
    "--vpc-config",
    "--package-type",
    "--dead-letter-config",
    "--environment",
    "--kms-key-arn",
    "--tracing-config",
    "--tags",
    "--layers",
    "--file-system-configs",
    "--code-signing-config-arn",
    "--image-config",
    "--architectures",
    "--ephemeral-storage",
    "--snap-start",
    "--logging-config",
    "--tenancy-config",
    "--capacity-provider-config",
    "--durable-config",
  ],
  "publish-layer-version": [
    "--layer-name",
    "--description",
    "--content",
    "--compatible-runtimes",
    "--license-info",
    "--compatible-architectures",
    "--zip-file",
  ],
  "update-function-code": [
    "--function-name",
    "--zip-file",
    "--s3-bucket",
    "--s3-key",
    "--s3-object-version",
    "--image-uri",
    "--publish",
    "--no-publish",
    "--dry-run",
    "--no-dry-run",
    "--revision-id",
    "--architectures",
    "--source-kms-key-arn",
  ],
  "update-function-configuration": [
    "--function-name",
    "--role",
    "--handler",
    "--description",
    "--timeout",
    "--memory-size",
    "--vpc-config",
    "--environment",
    "--runtime",
    "--dead-letter-config",
    "--kms-key-arn",
    "--tracing-config",
    "--revision-id",
    "--layers",
    "--file-system-configs",
    "--image-config",
    "--ephemeral-storage",
  ],
  "wait function-updated": ["--function-name", "--qualifier"],
};

let dir: string;
let startedAt: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-lambdas-readme-"));
  startedAt = Date.now();
  // The layer commands copy `ffmpeg` and `ffprobe` from the working directory: the machine's, in place of a static build.
  for (const tool of ["ffmpeg", "ffprobe"]) {
    const { stdout } = await exec("bash", ["-c", `command -v ${tool}`]);
    await copyFile(stdout.trim(), join(dir, tool));
  }
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("lambdas/README.md", () => {
  it("has commands to run, and skips exactly the ones that start with aws", () => {
    expect(commands.filter((c) => c.kind === "mixed").map((c) => c.line)).toEqual([]);
    expect(awsOnly.map((c) => c.line)).toEqual(commands.filter((c) => /^aws\s/.test(c.line)).map((c) => c.line));
    // The checks below read what these produce.
    expect(runnable.some((c) => /^npm run build:lambdas\b/.test(c.line))).toBe(true);
    expect(runnable.some((c) => c.programs.includes("zip"))).toBe(true);
    expect(runnable.some((c) => /<</.test(c.line))).toBe(true);
  });

  // In README order, each in the temporary directory except npm scripts, which are the repository's.
  describe.each(runnable.map((c) => [c.line.split("\n")[0]!, c] as const))("runs: %s", (_, command) => {
    it("exits 0", async () => {
      const cwd = command.programs.includes("npm") ? ROOT : dir;
      try {
        await exec("bash", ["-euo", "pipefail", "-c", command.text], { cwd, maxBuffer: 16 * 1024 * 1024 });
      } catch (error) {
        const { stderr, message } = error as { stderr?: string; message: string };
        throw new Error(`\`${command.line}\` failed in ${cwd}: ${stderr || message}`);
      }
    }, 300_000);
  });

  it("build:lambdas wrote one fresh zip per function, holding index.mjs, within Lambda's size limits", async () => {
    for (const name of FUNCTIONS) {
      const path = join(LAMBDAS, "dist", `${name}.zip`);
      const info = await stat(path);
      expect(info.mtimeMs).toBeGreaterThanOrEqual(startedAt - 2_000);
      expect(info.size).toBeLessThan(ZIPPED_LIMIT);
      const entries = listZip(await readFile(path));
      expect(entries.map((e) => e.name)).toEqual(["index.mjs"]);
      expect(entries.reduce((n, e) => n + e.size, 0)).toBeLessThan(UNZIPPED_LIMIT);
    }
  });

  it("the layer commands give a zip with bin/ffmpeg and bin/ffprobe, mode 755", async () => {
    const zips = (await readdir(dir)).filter((f) => f.endsWith(".zip"));
    expect(zips).toHaveLength(1);
    const entries = listZip(await readFile(join(dir, zips[0]!)));
    const files = entries.filter((e) => !e.directory);
    expect(files.map((e) => e.name).sort()).toEqual(["bin/ffmpeg", "bin/ffprobe"]);
    for (const file of files) {
      expect(file.mode, file.name).toBe(0o755);
      expect(file.size).toBe((await stat(join(dir, file.name.slice("bin/".length)))).size);
    }
    // The zip the aws s3 cp line uploads is the one the commands made.
    const upload = awsOnly.map((c) => /^aws s3 cp (\S+) s3:/.exec(c.line)?.[1]).filter(Boolean);
    expect(upload).toEqual(zips);
  });

  it("heredocs write JSON that parses, and inline JSON arguments parse", async () => {
    const written = runnable.map((c) => /^cat > (\S+) <</.exec(c.line)?.[1]).filter((f): f is string => Boolean(f));
    expect(written.length).toBeGreaterThan(0);
    for (const file of written.filter((f) => f.endsWith(".json"))) expect(() => JSON.parse(readFileSync(join(dir, file), "utf8")), file).not.toThrow();
    const trust = JSON.parse(await readFile(join(dir, "trust.json"), "utf8"));
    expect(trust.Statement[0]).toMatchObject({ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" });
    const inline = awsOnly.flatMap((c) => [...c.line.matchAll(/'(\{[^']*)'/g)].map((m) => m[1]!));
    expect(inline.length).toBeGreaterThan(0);
    for (const json of inline) expect(() => JSON.parse(json), json).not.toThrow();
  });

  it("the aws lambda lines use only the CLI's documented flags, and the build's zip paths", async () => {
    const lambda = awsOnly.filter((c) => /^aws lambda /.test(c.line));
    expect(lambda.length).toBeGreaterThan(0);
    for (const command of lambda) {
      const words = unquoted(command.line).split(/\s+/);
      const subcommand = words[2] === "wait" ? `wait ${words[3]}` : words[2]!;
      const known = LAMBDA_FLAGS[subcommand];
      expect(known, `aws lambda ${subcommand}: add its documented flags to this test`).toBeDefined();
      for (const flag of words.filter((w) => w.startsWith("--"))) expect([...known!, ...GLOBAL_FLAGS], `aws lambda ${subcommand}`).toContain(flag);
      // Ranges from the same request model: Timeout at most 900 s, EphemeralStorage.Size 512..10240 MB.
      const timeout = /--timeout (\d+)/.exec(command.line);
      if (timeout) expect(Number(timeout[1])).toBeLessThanOrEqual(900);
      const storage = /--ephemeral-storage Size=(\d+)/.exec(command.line);
      if (storage) expect(Number(storage[1])).toSatisfy((mb: number) => mb >= 512 && mb <= 10240);
      for (const [, path] of command.line.matchAll(/fileb:\/\/(\S+)/g)) await expect(stat(join(ROOT, path!)), path).resolves.toBeDefined();
    }
  });
});
