/**
 * The editor's upload straight to the bucket in Chromium: the services with STORAGE=s3, UPLOAD_DELIVERY=presigned
 * and OUTPUT_DELIVERY=presigned on s3rver behind the strict front (presigned signatures and multipart completions
 * checked as S3 checks them), the bucket's CORS rule allowing PUT and exposing ETag, and the editor's MEDIA_ORIGINS
 * naming the bucket. The file's parts go from the page to the bucket, never through the gateway; the asset then runs
 * and its output plays from the bucket.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestS3, type TestS3 } from "@vp/storage/testing";
import { node, openPage, playFor, screenshot, startEditorStack, type EditorStack } from "./harness";

const exec = promisify(execFile);

/** What the bucket needs for the editor: PUT of parts and GET of outputs from its origin, and the ETag readable. */
const CORS = `<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod>
<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>`;

let s3: TestS3;
let env: EditorStack;

beforeAll(async () => {
  s3 = await startTestS3({ strict: true, cors: CORS });
  env = await startEditorStack({
    env: { ...s3.env, S3_PREFIX: "web", UPLOAD_DELIVERY: "presigned", OUTPUT_DELIVERY: "presigned" },
    webEnv: { MEDIA_ORIGINS: s3.endpoint },
  });
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
  await s3?.close();
});

describe("the editor's upload with UPLOAD_DELIVERY=presigned", () => {
  it("sends a chosen file's parts from the page straight to the bucket, records the asset, and plays its output from there", async () => {
    // About 9 MB of lossless noise: two parts of the 8 MiB part size.
    const path = join(env.scratch, "noise.mp4");
    const source = "nullsrc=s=320x240:r=25:d=3,geq=lum='random(1)*255':cb=128:cr=128";
    await exec("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", path]);
    const clip = await readFile(path);

    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Straight to the bucket" });
    const { page, expectNoErrors } = await openPage(env.browser);
    const sent: Array<{ method: string; url: string }> = [];
    page.on("request", (request) => {
      if (request.method() === "PUT") sent.push({ method: request.method(), url: request.url() });
    });
    await page.goto(`${env.web.url}/pipelines/${pipeline.id}`);
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.getByTestId("palette-asset").click();
    await page.locator(node("asset-1")).waitFor();
    await page.getByTestId("file-input-asset-1").setInputFiles({ name: "noise.mp4", mimeType: "video/mp4", buffer: clip });
    await page.getByTestId("asset-uploaded-asset-1").waitFor({ timeout: 60_000 });

    // The parts went to the bucket (part 1 and 2 of one upload); nothing was PUT to the gateway.
    const parts = sent.map((s) => new URL(s.url));
    expect(parts.map((u) => u.origin)).toEqual([s3.endpoint, s3.endpoint]);
    expect(parts.map((u) => u.searchParams.get("partNumber")).sort()).toEqual(["1", "2"]);
    const { rows } = await env.db.admin.query("select asset from video_production_nodes where pipeline_id = $1 and id = 'asset-1'", [pipeline.id]);
    expect(rows[0].asset).toMatchObject({ type: "video", size: clip.length, contentType: "video/mp4", source: expect.stringMatching(/^pipelines\//) });
    expect((await s3.storage("web").getBuffer(rows[0].asset.source)).equals(clip)).toBe(true);
    expect(await s3.pendingUploads()).toEqual([]);
    // The card shows the file by name, with its duration read from the bucket (the asset route redirects there).
    expect(rows[0].asset.name).toBe("noise.mp4");
    expect(await page.getByTestId("asset-name-asset-1").textContent()).toBe("noise.mp4");
    await page.locator('[data-testid="asset-facts-asset-1"]', { hasText: /^3\.0 s · / }).waitFor();

    await page.getByTestId("execute-asset-1").click();
    await page.locator('[data-testid="status-asset-1"][data-status="completed"]').waitFor({ timeout: 60_000 });
    await page.getByTestId("output-video-asset-1").waitFor();
    const played = await playFor(page, "output-video-asset-1");
    expect(played).toMatchObject({ error: null, width: 320, height: 240 });
    expect(played.now).toBeGreaterThan(played.start);
    await screenshot(page, "direct-upload-played");
    expectNoErrors();
  });
});
