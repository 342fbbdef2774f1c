/**
 * `npm run build:lambdas` produces deployment packages that work on their own: each zip holds one bundle,
 * and that bundle, imported from the zip's bytes with nothing of the repository around it, runs the
 * function against S3 configured the way Lambda configures it (environment variables).
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestClip } from "@vp/media";
import { startTestS3, type TestS3 } from "@vp/storage/testing";
import { buildLambdas, FUNCTIONS } from "./build";
import { unzip, zip } from "./zip";

const exec = promisify(execFile);

let dir: string;
let s3: TestS3;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-build-lambdas-"));
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("build:lambdas", () => {
  it("zip() writes archives the zip format reads back, byte for byte and reproducibly", () => {
    const entries = [
      { name: "index.mjs", data: Buffer.from("export const handler = async () => 1;\n".repeat(100)) },
      { name: "a/b.txt", data: Buffer.alloc(0) },
    ];
    const archive = zip(entries);
    expect(zip(entries).equals(archive)).toBe(true);
    const back = unzip(archive);
    expect([...back.keys()]).toEqual(["index.mjs", "a/b.txt"]);
    expect(back.get("index.mjs")!.equals(entries[0]!.data)).toBe(true);
  });

  it("builds one self-contained zip per function that runs from outside the repository", async () => {
    const built = await buildLambdas({ outDir: join(dir, "dist") });
    expect(built.map((b) => b.name)).toEqual([...FUNCTIONS]);
    for (const b of built) {
      const files = unzip(await readFile(b.zip));
      expect([...files.keys()]).toEqual(["index.mjs"]);
      expect(files.get("index.mjs")!.equals(await readFile(b.bundle))).toBe(true);
    }
    // Unpacked where no node_modules can be found (as in /var/task), with Lambda's kind of configuration.
    const task = join(dir, "task");
    await mkdir(task);
    const merger = built.find((b) => b.name === "video-merger")!;
    await writeFile(join(task, "index.mjs"), unzip(await readFile(merger.zip)).get("index.mjs")!);
    const clip = join(dir, "clip.mp4");
    await makeTestClip({ path: clip, durationSeconds: 1, width: 160, height: 120, fps: 15 });
    const storage = s3.storage("built");
    await storage.putFile("in/a.mp4", clip);
    await storage.putFile("in/b.mp4", clip);
    const script = `
      const { handler } = await import(${JSON.stringify(pathToFileURL(join(task, "index.mjs")).href)});
      const result = await handler({ input_keys: ["in/a.mp4", "in/b.mp4"], output_key: "out/merged.mp4" });
      process.stdout.write(JSON.stringify(result));
      try { await handler({ input_keys: [], output_key: "out/x.mp4" }); } catch (e) { process.stdout.write("\\n" + e.name + ": " + e.message); }
    `;
    const { stdout } = await exec(process.execPath, ["--input-type=module", "-e", script], {
      cwd: task,
      env: { PATH: process.env.PATH, HOME: task, ...s3.env, S3_PREFIX: "built", AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "1024" },
    });
    const [json, error] = stdout.split("\n");
    const result = JSON.parse(json!) as { s3_key: string; duration: number; size: number; cost: number; strategy: string };
    expect(result).toMatchObject({ s3_key: "out/merged.mp4", strategy: "copy", video_codec: "h264" });
    expect(Math.abs(result.duration - 2)).toBeLessThanOrEqual(0.1);
    expect(result.size).toBe((await storage.stat("out/merged.mp4"))!.size);
    expect(error).toMatch(/^LambdaEventError: invalid event: input_keys/);
  });
});
