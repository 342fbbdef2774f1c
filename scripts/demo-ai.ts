/**
 * The AI part of the `npm start` demo, through the gateway's HTTP API only: a script asset, a voiceover and a
 * talking head speaking it, and a generated animation, all on the local providers (espeak-ng and ffmpeg on
 * this machine, no API key, no money). scripts/start.ts calls `runAiDemo` after the merge demo.
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

let bearer: string | undefined;

async function call<T>(apiRoot: string, method: string, path: string, body?: unknown): Promise<T> {
  const auth: Record<string, string> = bearer ? { authorization: `Bearer ${bearer}` } : {};
  const response = await fetch(`${apiRoot}${path}`, {
    method,
    headers: body === undefined ? auth : { ...auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} -> ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

async function waitForNodes(apiRoot: string, pipelineId: string, ids: string[], timeoutMs: number, log: (line: string) => void) {
  const deadline = Date.now() + timeoutMs;
  const last = new Map<string, string>();
  for (;;) {
    const { nodes } = await call<{ nodes: AiDemoNode[] }>(apiRoot, "GET", `/pipelines/${pipelineId}/nodes`);
    const wanted = nodes.filter((n) => ids.includes(n.id));
    for (const n of wanted) {
      const line = `${n.status}${n.status === "in_progress" && typeof n.metadata?.progress === "number" ? ` ${n.metadata.progress}%` : ""}`;
      if (last.get(n.id) !== line) log(`${n.id.padEnd(10)} ${line}${n.metadata?.error ? `: ${String(n.metadata.error)}` : ""}`);
      last.set(n.id, line);
    }
    if (wanted.length === ids.length && wanted.every((n) => n.status === "completed" || n.status === "failed")) {
      return new Map(wanted.map((n) => [n.id, n]));
    }
    if (Date.now() > deadline) throw new Error(`AI demo: nodes not finished within ${timeoutMs} ms: ${JSON.stringify([...last])}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Builds and runs: script (text asset) -> voiceover (generate-voiceover), script -> presenter (talking-head,
 * the node title on a presenter card speaking the script), and animation (generate-animation from a prompt).
 * No node names a provider, so without API keys every one runs on "local". Resolves when all are done;
 * throws if one failed.
 */
export async function runAiDemo(options: AiDemoOptions): Promise<AiDemoResult> {
  const { apiRoot } = options;
  bearer = options.token;
  const log = options.log ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const at = (dx: number, dy: number) => (options.origin ? { position: { x: options.origin.x + dx, y: options.origin.y + dy } } : {});
  const pipelineId =
    options.pipelineId ??
    (await call<{ pipeline: { id: string } }>(apiRoot, "POST", "/pipelines", { title: `AI demo ${new Date().toISOString()}` })).pipeline.id;

  await call(apiRoot, "POST", `/pipelines/${pipelineId}/nodes`, { id: "script", title: "Lesson script", type: "asset", asset: { type: "text", content: AI_DEMO_SCRIPT }, ...at(0, 0) });
  await call(apiRoot, "POST", `/pipelines/${pipelineId}/nodes/script/execute`);
  await waitForNodes(apiRoot, pipelineId, ["script"], timeoutMs, log);

  await call(apiRoot, "POST", `/pipelines/${pipelineId}/nodes`, {
    id: "voiceover",
    title: "Narration",
    type: "generate-voiceover",
    inputs: { script: ["script"] },
    config: { voiceId: "en-us", speed: 1.05 },
    ...at(380, 0),
  });
  await call(apiRoot, "POST", `/pipelines/${pipelineId}/nodes`, {
    id: "presenter",
    title: "Loops, lesson 1",
    type: "talking-head",
    inputs: { script: ["script"] },
    config: {},
    ...at(380, 290),
  });
  await call(apiRoot, "POST", `/pipelines/${pipelineId}/nodes`, {
    id: "animation",
    title: "Ocean intro",
    type: "generate-animation",
    config: { prompt: AI_DEMO_PROMPT, durationSeconds: 4 },
    ...at(760, 0),
  });
  for (const id of ["voiceover", "presenter", "animation"]) await call(apiRoot, "POST", `/pipelines/${pipelineId}/nodes/${id}/execute`);
  const done = await waitForNodes(apiRoot, pipelineId, ["script", "voiceover", "presenter", "animation"], timeoutMs, log);

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
