/**
 * Pipeline variables end to end: the five services as processes, a text asset with a `{{name}}` placeholder
 * feeding a local voiceover (espeak-ng). A run fills the placeholder from the variable's default in the job and in
 * the cache key alike; a new default makes both nodes outdated and the next run makes different results; going back
 * to the earlier default finds them in the cache; a placeholder without a default refuses the run before anything runs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestStack, type TestStack } from "@vp/testkit";
import { client, type Client } from "./helpers";

/** No key, whatever the developer's shell exports: the voiceover runs on the local provider. */
const NO_KEYS = { HEYGEN_API_KEY: "", ELEVENLABS_API_KEY: "", GEMINI_API_KEY: "", VEO_API_KEY: "", RUNWAY_API_KEY: "" };

let fixture: TestStack;
let api: Client;

beforeAll(async () => {
  fixture = await startTestStack({ prefix: "vp-e2e-variables-", jobAckWaitMs: 5000, env: NO_KEYS });
  api = client(fixture.stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
});

type ApiNode = { id: string; status: string; asset: Record<string, unknown> | null; metadata: Record<string, any> | null; output: Record<string, any> | null };

async function runAll(P: string): Promise<string> {
  const res = await api.call("POST", `/pipelines/${P}/execute`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const runId = res.body.run_id as string;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const run = (await api.ok("GET", `/pipelines/${P}/runs`)).runs.find((r: { id: string }) => r.id === runId);
    if (run && run.status !== "running") {
      expect(run.status, JSON.stringify(run)).toBe("completed");
      return runId;
    }
    if (Date.now() > deadline) throw new Error(`run ${runId} still running`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function nodes(P: string): Promise<Record<string, ApiNode>> {
  return Object.fromEntries(((await api.ok("GET", `/pipelines/${P}/nodes`)).nodes as ApiNode[]).map((n) => [n.id, n]));
}

/** The text the executor stored as the script asset's output. */
async function storedText(P: string, nodeId: string): Promise<string> {
  const response = await fetch(`${api.root}/pipelines/${P}/nodes/${nodeId}/output`, { headers: await api.authHeader() });
  expect(response.status).toBe(200);
  return response.text();
}

const setName = (P: string, value: string) => api.ok("PUT", `/pipelines/${P}/variables`, { variables: [{ name: "name", type: "text", default: value }] });

describe("pipeline variables", () => {
  it("a run fills placeholders from the defaults in the job and the key; a new default makes the nodes outdated and new results", async () => {
    const P = (await api.ok("POST", "/pipelines", { title: "Variables e2e" })).pipeline.id as string;
    await setName(P, "Ada");
    await api.ok("POST", `/pipelines/${P}/nodes`, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Hello {{name}}" } });
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "voice",
      title: "Voice",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "local", voiceId: "en-us" },
    });

    await runAll(P);
    expect(await storedText(P, "script")).toBe("Hello Ada");
    const first = await nodes(P);
    expect(first.script!.asset).toMatchObject({ type: "text", content: "Hello {{name}}" });
    expect(first.voice!.output).toMatchObject({ type: "audio", provider: "local" });
    // The gateway keys the nodes as the scheduler did: nothing is outdated, a run would make nothing again.
    expect((await api.ok("GET", `/pipelines/${P}/outdated`)).node_ids).toEqual([]);
    const estimate = (await api.ok("GET", `/pipelines/${P}/estimate`)).estimate;
    expect(estimate.nodes.map((n: { source: string }) => n.source)).toEqual(["up-to-date", "up-to-date"]);

    await setName(P, "Grace");
    expect((await api.ok("GET", `/pipelines/${P}/outdated`)).node_ids.sort()).toEqual(["script", "voice"]);
    await runAll(P);
    expect(await storedText(P, "script")).toBe("Hello Grace");
    const second = await nodes(P);
    expect(second.script!.metadata!.cacheKey).not.toBe(first.script!.metadata!.cacheKey);
    expect(second.voice!.metadata!.cacheKey).not.toBe(first.voice!.metadata!.cacheKey);
    expect(second.voice!.output!.contentHash).not.toBe(first.voice!.output!.contentHash);

    // Back to the first default: its results are in the cache under their keys (the voiceover's key is known once
    // the script is made again, so the estimate counts it as work).
    await setName(P, "Ada");
    expect((await api.ok("GET", `/pipelines/${P}/estimate`)).estimate.nodes.map((n: { source: string }) => n.source)).toEqual(["cached", "execute"]);
    await runAll(P);
    const third = await nodes(P);
    for (const id of ["script", "voice"]) {
      expect(third[id]!.metadata).toMatchObject({ cached: true, cacheKey: first[id]!.metadata!.cacheKey });
      expect(third[id]!.output!.contentHash).toBe(first[id]!.output!.contentHash);
    }
    expect(await storedText(P, "script")).toBe("Hello Ada");
  });

  it("a placeholder whose variable has no default refuses run all and execute, naming it, before anything runs", async () => {
    const P = (await api.ok("POST", "/pipelines", { title: "Variables without default" })).pipeline.id as string;
    await api.ok("PUT", `/pipelines/${P}/variables`, {
      variables: [
        { name: "name", type: "text", default: "Ada" },
        { name: "city", type: "text", description: "given by each batch row" },
      ],
    });
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "script",
      title: "Script",
      type: "asset",
      asset: { type: "text", content: "Hello {{name}} from {{city}}" },
    });

    const all = await api.call("POST", `/pipelines/${P}/execute`);
    expect(all.status).toBe(422);
    expect(all.body.problems).toEqual([{ nodeId: "script", message: "uses {{city}}, which has no default and no value in this run" }]);
    expect(all.body.error).toContain('"city"');
    const single = await api.call("POST", `/pipelines/${P}/nodes/script/execute`);
    expect(single.status).toBe(422);
    expect(single.body.error).toContain("{{city}}");
    expect((await api.ok("GET", `/pipelines/${P}/runs`)).runs).toEqual([]);
    expect((await nodes(P)).script!.status).toBe("pending");
  });
});
