/**
 * The AI part of the `npm start` demo, through the gateway's HTTP API only: a script asset, a voiceover and a
 * talking head speaking it, and a generated animation, all on the local providers (espeak-ng and ffmpeg on
 * this machine, no API key, no money). `npm start`'s demo (scripts/demo.ts) builds the same nodes into its pipeline
 * of every node type and uses this file's client; `runAiDemo` runs the AI nodes alone (tests/e2e/ai-local.test.ts).
 */

export interface AiDemoOptions {
  /** The gateway's API root, e.g. http://127.0.0.1:3061/v1/video_production */
  apiRoot: string;
  /** Bearer token with editor and operator roles (the dev login's). */
  token?: string;
  /** Adds the nodes to this pipeline; default: a new pipeline "AI demo <time>". */
  pipelineId?: string;
  /** Progress lines for a terminal. */
  log?: (line: string) => void;
  timeoutMs?: number;
  /** Canvas position of the script node (the others are placed around it); default: left to the editor's layout. */
  origin?: { x: number; y: number };
}

export interface AiDemoNode {
  id: string;
  status: string;
  metadata: Record<string, unknown> | null;
  output: Record<string, unknown> | null;
}

export interface AiDemoResult {
  pipelineId: string;
  nodes: Record<"script" | "voiceover" | "presenter" | "animation", AiDemoNode>;
}

export const AI_DEMO_SCRIPT =
  "Hello and welcome. In this lesson we look at loops: how a program repeats work until a condition is met. " +
  "By the end you will write three of them yourself.";

export const AI_DEMO_PROMPT = "a calm ocean at dawn, slow waves, soft light";

/** A small client of the gateway's API for the demos: JSON calls with the bearer token, and waiting for nodes. */
export function demoApi(apiRoot: string, token?: string) {
  const auth = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

  async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const bytes = body instanceof Uint8Array;
    const response = await fetch(`${apiRoot}${path}`, {
      method,
      headers: body === undefined || bytes ? { ...auth(), ...headers } : { ...auth(), "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : bytes ? (body as unknown as BodyInit) : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} -> ${response.status}: ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /**
   * Follows the pipeline's event stream (one request, however long the work takes) until every one of `ids` is
   * done (completed, failed, or cancelled after a failed upstream), logging each change of status and progress in
   * steps of a quarter; then reads the nodes once.
   */
  async function waitForNodes(pipelineId: string, ids: string[], timeoutMs: number, log: (line: string) => void): Promise<Map<string, AiDemoNode>> {
    const { token: streamToken } = await call<{ token: string }>("POST", `/pipelines/${pipelineId}/events/token`);
    const status = new Map<string, string>();
    const last = new Map<string, string>();
    const note = (id: string, nodeStatus: string, metadata: Record<string, unknown> | null) => {
      if (!ids.includes(id)) return;
      status.set(id, nodeStatus);
      const progress = typeof metadata?.progress === "number" ? Math.floor(metadata.progress / 25) * 25 : 0;
      const line = `${nodeStatus}${nodeStatus === "in_progress" && progress ? ` ${progress}%` : ""}`;
      if (last.get(id) !== line) log(`${id.padEnd(10)} ${line}${metadata?.error ? `: ${String(metadata.error)}` : ""}`);
      last.set(id, line);
    };
    const finished = () => ids.every((id) => ["completed", "failed", "cancelled"].includes(status.get(id) ?? ""));
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetch(`${apiRoot}/pipelines/${pipelineId}/events?token=${encodeURIComponent(streamToken)}`, { signal: controller.signal });
      if (!response.ok || !response.body) throw new Error(`GET events -> ${response.status}: ${await response.text()}`);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      while (!finished()) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the event stream ended before the nodes finished");
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = block
            .split("\n")
            .filter((l) => l.startsWith("data: "))
            .map((l) => l.slice(6))
            .join("\n");
          if (!data) continue;
          const payload = JSON.parse(data);
          if (event === "snapshot") for (const n of payload.pipeline.nodes as AiDemoNode[]) note(n.id, n.status, n.metadata);
          if (event === "node") note(payload.nodeId, payload.status, payload.metadata);
        }
      }
      await reader.cancel().catch(() => undefined);
    } catch (error) {
      if (controller.signal.aborted) throw new Error(`nodes not finished within ${timeoutMs} ms: ${JSON.stringify([...last])}`);
      throw error;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    const { nodes } = await call<{ nodes: AiDemoNode[] }>("GET", `/pipelines/${pipelineId}/nodes`);
    return new Map(nodes.filter((n) => ids.includes(n.id)).map((n) => [n.id, n]));
  }

  return { call, waitForNodes };
}

/**
 * Builds and runs: script (text asset) -> voiceover (generate-voiceover), script -> presenter (talking-head,
 * the node title on a presenter card speaking the script), and animation (generate-animation from a prompt).
 * No node names a provider, so without API keys every one runs on "local". Resolves when all are done;
 * throws if one failed.
 */
export async function runAiDemo(options: AiDemoOptions): Promise<AiDemoResult> {
  const { apiRoot } = options;
  const { call, waitForNodes } = demoApi(apiRoot, options.token);
  const log = options.log ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const at = (dx: number, dy: number) => (options.origin ? { position: { x: options.origin.x + dx, y: options.origin.y + dy } } : {});
  const pipelineId =
    options.pipelineId ?? (await call<{ pipeline: { id: string } }>("POST", "/pipelines", { title: `AI demo ${new Date().toISOString()}` })).pipeline.id;

  await call("POST", `/pipelines/${pipelineId}/nodes`, {
    id: "script",
    title: "Lesson script",
    type: "asset",
    asset: { type: "text", content: AI_DEMO_SCRIPT },
    ...at(0, 0),
  });
  await call("POST", `/pipelines/${pipelineId}/nodes/script/execute`);
  await waitForNodes(pipelineId, ["script"], timeoutMs, log);

  await call("POST", `/pipelines/${pipelineId}/nodes`, {
    id: "voiceover",
    title: "Narration",
    type: "generate-voiceover",
    inputs: { script: ["script"] },
    config: { voiceId: "en-us", speed: 1.05 },
    ...at(380, 0),
  });
  await call("POST", `/pipelines/${pipelineId}/nodes`, {
    id: "presenter",
    title: "Loops, lesson 1",
    type: "talking-head",
    inputs: { script: ["script"] },
    config: {},
    ...at(380, 290),
  });
  await call("POST", `/pipelines/${pipelineId}/nodes`, {
    id: "animation",
    title: "Ocean intro",
    type: "generate-animation",
    config: { prompt: AI_DEMO_PROMPT, durationSeconds: 4 },
    ...at(760, 0),
  });
  for (const id of ["voiceover", "presenter", "animation"]) await call("POST", `/pipelines/${pipelineId}/nodes/${id}/execute`);
  const done = await waitForNodes(pipelineId, ["script", "voiceover", "presenter", "animation"], timeoutMs, log);

  const nodes = Object.fromEntries([...done]) as AiDemoResult["nodes"];
  const failed = Object.values(nodes).filter((n) => n.status !== "completed");
  if (failed.length) throw new Error(`AI demo: ${failed.map((n) => `${n.id} ${n.status}: ${String(n.metadata?.error)}`).join("; ")}`);
  for (const id of ["voiceover", "presenter", "animation"] as const) {
    const n = nodes[id];
    const o = n.output as { type: string; duration?: number; provider?: string; label?: string };
    log(`${id.padEnd(10)} ${o.type} ${o.duration?.toFixed(2)} s, ${o.provider}${o.label ? ` (${o.label})` : ""}, cost $${String(n.metadata?.cost)}`);
    log(`${"".padEnd(10)} ${apiRoot}/pipelines/${pipelineId}/nodes/${id}/output`);
  }
  return { pipelineId, nodes };
}
