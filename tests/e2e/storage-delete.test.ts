/**
 * A pipeline deleted while one of its nodes runs: the five services as processes, HeyGen faked by @vp/testkit.
 * The gateway deletes the pipeline's files once the delete commits; the executor that finishes the node's work
 * afterwards finds the node gone and deletes the output it stored instead of reporting it.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startFakeProviders, startTestStack, type FakeProviders, type TestStack } from "@vp/testkit";
import { client, type Client } from "./helpers";

let fakes: FakeProviders;
let t: TestStack;
let api: Client;

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 2 });
  t = await startTestStack({
    prefix: "vp-e2e-storage-delete-",
    jobAckWaitMs: 3000,
    env: { ...fakes.env, PROVIDER_POLL_INTERVAL_MS: "100", PROVIDER_HTTP_TIMEOUT_MS: "1000" },
  });
  api = client(t.stack.baseUrl);
});

afterAll(async () => {
  await t?.cleanup();
  await fakes?.close();
});

/** Every file under a directory, recursively (paths relative to it). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

it("a late output of a node whose pipeline was deleted mid-run is deleted, not left in storage", async () => {
  const pipelineId = (await api.ok("POST", "/pipelines", { title: "deleted mid-run" })).pipeline.id as string;
  await api.ok("POST", `/pipelines/${pipelineId}/nodes`, {
    id: "th",
    title: "Presenter",
    type: "talking-head",
    config: { provider: "heygen", avatarId: "Daisy-inskirt-20220818", voiceId: "2d5b0e6cf36f460aa7fc47e3eee4ba54", script: "Hello there." },
  });
  const heygen = fakes.heygen.hold();
  expect((await api.call("POST", `/pipelines/${pipelineId}/nodes/th/execute`)).status).toBe(200);
  await heygen.waitFor(() => heygen.calls.filter((c) => c.endpoint === "status").length >= 2, 30_000, "polling");

  expect((await api.call("DELETE", `/pipelines/${pipelineId}`)).status).toBe(204);
  heygen.release();

  const executor = t.stack.services.get("executor-ai")!;
  const deadline = Date.now() + 30_000;
  while (
    !executor.logs.some(
      (l) => l.nodeId === "th" && l.pipelineId === pipelineId && l.msg === "the node was deleted while it ran; its output is deleted, not reported",
    )
  ) {
    if (Date.now() > deadline)
      throw new Error(`no late-output clean-up logged: ${JSON.stringify(executor.logs.filter((l) => l.nodeId === "th").map((l) => l.msg))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The provider's video was downloaded and stored, then deleted: nothing of the pipeline is left.
  expect(heygen.calls.some((c) => c.endpoint === "download")).toBe(true);
  expect(await filesUnder(join(t.scratch, "storage", "pipelines", pipelineId))).toEqual([]);
}, 120_000);
