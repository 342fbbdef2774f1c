import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { claimWorkRoot, WORK_ROOT_OWNER_FILE, WorkRootInUseError } from "./reap";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("claimWorkRoot", () => {
  it("takes a free root, again after a restart of the same process, and over an owner that is gone", async () => {
    const root = join(await mkdtemp(join(tmpdir(), "vp-claim-")), "work");
    dirs.push(root);
    await claimWorkRoot(root, "executor-ffmpeg");
    await claimWorkRoot(root, "executor-ffmpeg");
    expect(JSON.parse(await readFile(join(root, WORK_ROOT_OWNER_FILE), "utf8"))).toMatchObject({ pid: process.pid, service: "executor-ffmpeg" });

    // A process that has exited: its claim is stale and taken over.
    const gone = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => gone.once("exit", r));
    await writeFile(join(root, WORK_ROOT_OWNER_FILE), JSON.stringify({ pid: gone.pid, service: "executor-ai" }));
    await claimWorkRoot(root, "executor-ffmpeg");
    expect(JSON.parse(await readFile(join(root, WORK_ROOT_OWNER_FILE), "utf8")).pid).toBe(process.pid);
  });

  it("refuses a root a live other process owns, naming it", async () => {
    const root = await mkdtemp(join(tmpdir(), "vp-claim-"));
    dirs.push(root);
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"]);
    try {
      await writeFile(join(root, WORK_ROOT_OWNER_FILE), JSON.stringify({ pid: other.pid, service: "executor-ai" }));
      const attempt = claimWorkRoot(root, "executor-ffmpeg");
      await expect(attempt).rejects.toBeInstanceOf(WorkRootInUseError);
      await expect(claimWorkRoot(root, "executor-ffmpeg")).rejects.toThrow(`is in use by executor-ai (pid ${other.pid})`);
    } finally {
      other.kill("SIGKILL");
    }
  });
});
