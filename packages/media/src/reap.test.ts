import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { claimWorkRoot, type ProcessIdentity, processIdentity, WORK_ROOT_OWNER_FILE, WorkRootInUseError } from "./reap";

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
    expect(JSON.parse(await readFile(join(root, WORK_ROOT_OWNER_FILE), "utf8"))).toMatchObject({ ...(await processIdentity()), service: "executor-ffmpeg" });

    // A process that has exited: its claim is stale and taken over.
    const gone = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => gone.once("exit", r));
    await writeFile(join(root, WORK_ROOT_OWNER_FILE), JSON.stringify({ pid: gone.pid, service: "executor-ai" }));
    await claimWorkRoot(root, "executor-ffmpeg");
    expect(JSON.parse(await readFile(join(root, WORK_ROOT_OWNER_FILE), "utf8")).pid).toBe(process.pid);
  });

  /** A live child process, its real identity, and a root whose owner file `owner` writes. */
  async function withChild(run: (child: ProcessIdentity, root: string, owner: (record: object) => Promise<void>) => Promise<void>) {
    const root = await mkdtemp(join(tmpdir(), "vp-claim-"));
    dirs.push(root);
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"]);
    try {
      await new Promise((r) => other.once("spawn", r));
      const child = await processIdentity(other.pid!);
      await run(child, root, (record) => writeFile(join(root, WORK_ROOT_OWNER_FILE), JSON.stringify({ ...record, service: "executor-ai" })));
    } finally {
      other.kill("SIGKILL");
    }
  }
  const ownerPid = async (root: string) => JSON.parse(await readFile(join(root, WORK_ROOT_OWNER_FILE), "utf8")).pid;

  it("refuses a root a live other process owns, naming it", async () => {
    await withChild(async (child, root, owner) => {
      if (process.platform === "linux")
        expect(child).toMatchObject({ pidNs: expect.stringMatching(/^pid:\[\d+\]$/), startTime: expect.stringMatching(/^\d+$/) });
      await owner(child);
      await expect(claimWorkRoot(root, "executor-ffmpeg")).rejects.toBeInstanceOf(WorkRootInUseError);
      await expect(claimWorkRoot(root, "executor-ffmpeg")).rejects.toThrow(`is in use by executor-ai (pid ${child.pid})`);
      expect(await ownerPid(root)).toBe(child.pid);
    });
  });

  it.skipIf(process.platform !== "linux")("takes over an owner of another pid namespace (a restarted container)", async () => {
    await withChild(async (child, root, owner) => {
      await owner({ ...child, pidNs: "pid:[1]" });
      await claimWorkRoot(root, "executor-ffmpeg");
      expect(await ownerPid(root)).toBe(process.pid);
    });
  });

  it.skipIf(process.platform !== "linux")("takes over a reused pid: alive, but started at another time or boot", async () => {
    await withChild(async (child, root, owner) => {
      await owner({ ...child, startTime: String(Number(child.startTime) + 1) });
      await claimWorkRoot(root, "executor-ffmpeg");
      expect(await ownerPid(root)).toBe(process.pid);

      await owner({ ...child, bootId: "00000000-0000-0000-0000-000000000000" });
      await claimWorkRoot(root, "executor-ffmpeg");
      expect(await ownerPid(root)).toBe(process.pid);
    });
  });

  it.skipIf(process.platform !== "linux")("takes over an owner recorded by pid alone (an older build): a pid may name anything here", async () => {
    await withChild(async (child, root, owner) => {
      await owner({ pid: child.pid });
      await claimWorkRoot(root, "executor-ffmpeg");
      expect(await ownerPid(root)).toBe(process.pid);
    });
  });

  it("takes over an unreadable owner file", async () => {
    for (const content of ['{"pid": 12', "", "null", "[1]", JSON.stringify({ pid: 0 }), JSON.stringify({ pid: -1 }), JSON.stringify({ pid: "1" })]) {
      const root = await mkdtemp(join(tmpdir(), "vp-claim-"));
      dirs.push(root);
      await writeFile(join(root, WORK_ROOT_OWNER_FILE), content);
      await claimWorkRoot(root, "executor-ffmpeg");
      expect(await ownerPid(root), content).toBe(process.pid);
    }
  });
});
