import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestClip, type TestClipOptions } from "@vp/media";

export { makeTestClip, type TestClipOptions };

/** A real MP4 (H.264 + AAC from lavfi) as bytes, e.g. to upload through the gateway or put into storage. */
export async function makeClipBuffer(options: Omit<TestClipOptions, "path">): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "vp-clip-"));
  try {
    const path = join(dir, "clip.mp4");
    await makeTestClip({ ...options, path });
    return await readFile(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
