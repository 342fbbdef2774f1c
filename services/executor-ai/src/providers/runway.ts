import { runwayDurationProblem } from "@vp/contracts";
import { WorkInputError } from "../errors";
import { createProviderHttp, type ProviderHttpOptions } from "./http";
import type { JobPoll } from "./types";

/**
 * Runway, written against https://docs.dev.runwayml.com/api/ and the official SDK (runwayml/sdk-node:
 * imageToVideo.create, textToVideo.create, tasks.retrieve, tasks.delete): POST /v1/image_to_video or
 * /v1/text_to_video with `Authorization: Bearer <key>` and `X-Runway-Version: 2024-11-06` -> { id };
 * GET /v1/tasks/{id} until status SUCCEEDED (output: [url], URLs expire in 24-48 h) or FAILED (failure,
 * failureCode); DELETE /v1/tasks/{id} cancels a PENDING/THROTTLED/RUNNING task. Errors: `{ error: "..." }`, a
 * refused body `{ error: "Validation of body failed", issues: [{ code, message, path }] }`.
 */
export const RUNWAY_DEFAULT_BASE_URL = "https://api.dev.runwayml.com";
export const RUNWAY_API_VERSION = "2024-11-06";

export interface RunwayGenerate {
  model: string;
  promptText: string;
  /** HTTPS URL or data URI of the first frame; absent for text to video. */
  promptImage?: string;
  ratio: "1280:720" | "720:1280";
  duration: number;
}

export function describeRunwayError(body: unknown): { message?: string; code?: string } {
  const b = body as { error?: unknown; issues?: Array<{ message?: string; path?: unknown[] }> } | undefined;
  const issues = b?.issues?.map((i) => `${(i.path ?? []).join(".")}: ${i.message ?? ""}`).join("; ");
  if (typeof b?.error === "string") return { message: issues ? `${b.error} (${issues})` : b.error };
  return {};
}

const TASK_ID = /^[A-Za-z0-9-]{1,100}$/;

export function createRunwayClient(options: Omit<ProviderHttpOptions, "provider" | "authHeaders" | "secrets" | "describeError"> & { apiKey: string }) {
  const http = createProviderHttp({
    ...options,
    provider: "runway",
    authHeaders: { authorization: `Bearer ${options.apiKey}`, "x-runway-version": RUNWAY_API_VERSION },
    secrets: [options.apiKey],
    describeError: describeRunwayError,
  });
  return {
    http,
    async generate(input: RunwayGenerate, signal?: AbortSignal): Promise<{ id: string }> {
      // A duration the model does not render is a 400 at Runway: say so here instead of sending it.
      const problem = runwayDurationProblem([input.model], input.duration);
      if (problem) throw new WorkInputError(problem);
      const body: Record<string, unknown> = { model: input.model, promptText: input.promptText, ratio: input.ratio, duration: input.duration };
      if (input.promptImage) body.promptImage = input.promptImage;
      const { json } = await http.json({
        method: "POST",
        path: input.promptImage ? "/v1/image_to_video" : "/v1/text_to_video",
        what: input.promptImage ? "image to video" : "text to video",
        signal,
        body,
      });
      const id = (json as { id?: unknown })?.id;
      if (typeof id !== "string" || !TASK_ID.test(id)) throw new Error("Runway: the answer has no usable task id");
      return { id };
    },

    async poll(taskId: string, signal?: AbortSignal): Promise<JobPoll> {
      if (!TASK_ID.test(taskId)) throw new Error(`not a Runway task id: ${taskId}`);
      const { json } = await http.json({ method: "GET", path: `/v1/tasks/${taskId}`, what: "get task", signal });
      const task = (json ?? {}) as { status?: string; progress?: number; output?: string[]; failure?: string; failureCode?: string };
      switch (task.status) {
        case "SUCCEEDED": {
          const url = task.output?.[0];
          if (!url) throw new Error("Runway task succeeded without an output URL");
          return { state: "succeeded", url };
        }
        case "FAILED":
          return { state: "failed", reason: `${task.failure ?? "the task failed"}${task.failureCode ? ` (${task.failureCode})` : ""}` };
        case "CANCELLED":
          return { state: "failed", reason: "the task was cancelled" };
        default:
          return { state: "running", progress: typeof task.progress === "number" ? task.progress : undefined };
      }
    },

    /** Cancels a pending or running task (Runway stops charging for it); deletes a finished one. */
    async cancel(taskId: string, signal?: AbortSignal): Promise<void> {
      if (!TASK_ID.test(taskId)) throw new Error(`not a Runway task id: ${taskId}`);
      await http.json({ method: "DELETE", path: `/v1/tasks/${taskId}`, what: "cancel task", signal });
    },
  };
}
export type RunwayClient = ReturnType<typeof createRunwayClient>;
