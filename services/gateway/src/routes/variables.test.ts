/**
 * Pipeline variables through the HTTP API (`app.request()`, real Postgres and NATS, no scheduler): declaring them
 * (every problem listed, a revision recorded), node writes and imports checked against them, and runs refused
 * before anything is queued when a placeholder has no default.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Role } from "@vp/auth";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, testToken, type TestBus, type TestDatabase } from "@vp/testkit";
import { testApp } from "../test-app";

let db: TestDatabase;
let bus: TestBus;
let scratch: string;
let app: ReturnType<typeof testApp>;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-vars-"));
  db = await createTestDatabase();
  bus = await createTestBus();
  app = testApp({ reader: db.pools.reader, editor: db.pools.editor, bus, scratch, logger: createLogger({ service: "gateway-variables-test", level: "warn" }) });
});

afterAll(async () => {
  await bus?.cleanup();
  await db?.drop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown, roles: Role[] = ["viewer", "editor", "operator"]) {
  const headers: Record<string, string> = { authorization: `Bearer ${await testToken(roles, { subject: "ana" })}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await app.request(`/v1/video_production${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const NAME = { name: "name", type: "text", default: "Ada" };
const COUNT = { name: "count", type: "number", default: 3 };
const CLIP = { name: "clip", type: "video", description: "the customer's clip" };

async function pipeline(id: string, variables: unknown[] = []) {
  expect((await call("POST", "/pipelines", { id, title: id })).status).toBe(201);
  if (variables.length) expect((await call("PUT", `/pipelines/${id}/variables`, { variables })).status).toBe(200);
}

describe("declaring variables", () => {
  it("PUT replaces them as one revision by its author; GET and the pipeline answer them", async () => {
    await pipeline("vars-put");
    expect((await call("GET", "/pipelines/vars-put/variables")).body).toEqual({ variables: [] });
    const put = await call("PUT", "/pipelines/vars-put/variables", { variables: [NAME, COUNT, CLIP] });
    expect(put).toEqual({ status: 200, body: { variables: [NAME, COUNT, CLIP] } });
    expect((await call("GET", "/pipelines/vars-put/variables")).body).toEqual({ variables: [NAME, COUNT, CLIP] });
    const shown = await call("GET", "/pipelines/vars-put");
    expect(shown.body.pipeline).toMatchObject({ revision: 1, variables: [NAME, COUNT, CLIP], nodes: [] });
    const revisions = await call("GET", "/pipelines/vars-put/revisions");
    expect(revisions.body.revisions).toMatchObject([{ revision: 1, created_by: "ana", summary: "Changed the pipeline's variables" }]);
    // The same list again changes nothing and records nothing.
    expect((await call("PUT", "/pipelines/vars-put/variables", { variables: [NAME, COUNT, CLIP] })).status).toBe(200);
    expect((await call("GET", "/pipelines/vars-put/revisions")).body.current).toBe(1);
  });

  it("refuses invalid declarations with every problem by its path, and a viewer", async () => {
    await pipeline("vars-bad");
    const bad = await call("PUT", "/pipelines/vars-bad/variables", {
      variables: [
        NAME,
        { name: "name", type: "text" },
        { name: "1st", type: "text" },
        { name: "n", type: "number", default: "3" },
        { name: "v", type: "video", default: "x" },
      ],
    });
    expect(bad.status).toBe(422);
    expect(bad.body.problems.map((p: { path: string }) => p.path)).toEqual(
      expect.arrayContaining(["variables.1.name", "variables.2.name", "variables.3.default", "variables.4.default"]),
    );
    expect(bad.body.error).toContain('"name" is declared twice');
    expect((await call("PUT", "/pipelines/vars-bad/variables", { variables: [], extra: 1 })).status).toBe(422);
    expect((await call("PUT", "/pipelines/vars-bad/variables", [NAME])).status).toBe(422);
    expect((await call("PUT", "/pipelines/vars-bad/variables", { variables: [NAME] }, ["viewer"])).status).toBe(403);
    expect((await call("PUT", "/pipelines/no-such/variables", { variables: [NAME] })).status).toBe(404);
    expect((await call("GET", "/pipelines/vars-bad/variables")).body).toEqual({ variables: [] });
  });

  it("refuses removing or retyping a variable still in use, naming every place that uses it", async () => {
    await pipeline("vars-used", [NAME, CLIP]);
    const script = { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Hello {{name}}" } };
    const head = { id: "head", title: "Head", type: "talking-head", config: { script: "Hi {{ name }}, welcome" } };
    const clip = { id: "clip", title: "Clip", type: "asset", asset: { type: "video", variable: "clip" } };
    for (const node of [script, head, clip]) expect((await call("POST", "/pipelines/vars-used/nodes", node)).status).toBe(201);

    const removed = await call("PUT", "/pipelines/vars-used/variables", { variables: [] });
    expect(removed.status).toBe(422);
    expect(removed.body.problems).toEqual([
      { nodeId: "script", slot: "asset", message: "asset uses {{name}}, which is not a variable of this pipeline" },
      { nodeId: "head", slot: "config.script", message: "config.script uses {{name}}, which is not a variable of this pipeline" },
      { nodeId: "clip", slot: "asset", message: 'the asset is bound to "clip", which is not a variable of this pipeline' },
    ]);
    expect(removed.body.error).toContain('"Script" (script).asset: asset uses {{name}}');
    const retyped = await call("PUT", "/pipelines/vars-used/variables", { variables: [NAME, { name: "clip", type: "image" }] });
    expect(retyped.status).toBe(422);
    expect(retyped.body.problems).toEqual([{ nodeId: "clip", slot: "asset", message: 'a video asset cannot be bound to "clip", a image variable' }]);
    expect((await call("GET", "/pipelines/vars-used/variables")).body.variables).toEqual([NAME, CLIP]);
  });
});

describe("node writes against the variables", () => {
  it("refuses a node whose placeholders or binding do not fit, on add and on edit; null unbinds an asset", async () => {
    await pipeline("vars-nodes", [NAME, CLIP]);
    const unknown = await call("POST", "/pipelines/vars-nodes/nodes", {
      id: "s",
      title: "S",
      type: "asset",
      asset: { type: "text", content: "Dear {{customer}}, {{clip}}" },
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.problems).toEqual([
      { nodeId: "s", slot: "asset", message: "asset uses {{customer}}, which is not a variable of this pipeline" },
      { nodeId: "s", slot: "asset", message: "asset uses {{clip}}, a video variable: only text and number variables go into text" },
    ]);
    const boundText = await call("POST", "/pipelines/vars-nodes/nodes", { id: "t", title: "T", type: "asset", asset: { type: "text", variable: "name" } });
    expect(boundText.status).toBe(422);
    expect(boundText.body.problems[0]).toMatchObject({ nodeId: "t", slot: "asset" });
    expect((await call("GET", "/pipelines/vars-nodes/nodes")).body.nodes).toEqual([]);

    expect(
      (await call("POST", "/pipelines/vars-nodes/nodes", { id: "s", title: "S", type: "asset", asset: { type: "text", content: "Hi {{name}}" } })).status,
    ).toBe(201);
    expect(
      (
        await call("POST", "/pipelines/vars-nodes/nodes", {
          id: "v",
          title: "V",
          type: "generate-voiceover",
          inputs: { script: ["s"] },
          config: { provider: "local" },
        })
      ).status,
    ).toBe(201);
    const badEdit = await call("PATCH", "/pipelines/vars-nodes/nodes/v", { config: { script: "Bye {{nobody}}" } });
    expect(badEdit.status).toBe(422);
    expect(badEdit.body.problems).toEqual([
      { nodeId: "v", slot: "config.script", message: "config.script uses {{nobody}}, which is not a variable of this pipeline" },
    ]);
    const badContent = await call("PATCH", "/pipelines/vars-nodes/nodes/s", { asset: { content: "Bye {{nobody}}" } });
    expect(badContent.status).toBe(422);
    expect((await call("GET", "/pipelines/vars-nodes/nodes/s")).body.node.asset.content).toBe("Hi {{name}}");

    expect((await call("POST", "/pipelines/vars-nodes/nodes", { id: "c", title: "C", type: "asset", asset: { type: "video", variable: "clip" } })).status).toBe(
      201,
    );
    const wrongType = await call("PATCH", "/pipelines/vars-nodes/nodes/c", { asset: { variable: "name" } });
    expect(wrongType.status).toBe(422);
    expect(wrongType.body.problems).toEqual([{ nodeId: "c", slot: "asset", message: 'a video asset cannot be bound to "name", a text variable' }]);
    expect((await call("PATCH", "/pipelines/vars-nodes/nodes/c", { asset: { variable: null } })).status).toBe(200);
    // Unbound: the variable may go now.
    expect((await call("PUT", "/pipelines/vars-nodes/variables", { variables: [NAME] })).status).toBe(200);
  });
});

describe("runs and variables", () => {
  it("refuses run all, run to here and a single execute before anything is queued when a placeholder has no default", async () => {
    await pipeline("vars-run", [{ name: "name", type: "text" }]);
    expect(
      (await call("POST", "/pipelines/vars-run/nodes", { id: "s", title: "Script", type: "asset", asset: { type: "text", content: "Hello {{name}}" } })).status,
    ).toBe(201);
    const all = await call("POST", "/pipelines/vars-run/execute");
    expect(all.status).toBe(422);
    expect(all.body.problems).toEqual([{ nodeId: "s", message: "uses {{name}}, which has no default and no value in this run" }]);
    expect(all.body.error).toMatch(/^Give "name" a default before running: "Script" \(s\): uses \{\{name\}\}/);
    const toHere = await call("POST", "/pipelines/vars-run/nodes/s/execute", { upstream: true });
    expect(toHere.status).toBe(422);
    expect(toHere.body.problems).toEqual(all.body.problems);
    const single = await call("POST", "/pipelines/vars-run/nodes/s/execute");
    expect(single.status).toBe(422);
    expect(single.body.problems).toEqual(all.body.problems);
    const estimate = await call("GET", "/pipelines/vars-run/estimate");
    expect(estimate.body.problems).toEqual(all.body.problems);
    const { rows } = await db.admin.query(`SELECT status FROM video_production_nodes WHERE pipeline_id = 'vars-run'`);
    expect(rows).toEqual([{ status: "pending" }]);
  });
});

describe("pipeline documents", () => {
  it("export carries the variables and bound assets; import keeps them and checks the nodes against them", async () => {
    await pipeline("vars-doc", [NAME, CLIP]);
    await call("POST", "/pipelines/vars-doc/nodes", { id: "s", title: "S", type: "asset", asset: { type: "text", content: "Hi {{name}}" } });
    await call("POST", "/pipelines/vars-doc/nodes", { id: "c", title: "C", type: "asset", asset: { type: "video", variable: "clip" } });
    const exported = (await call("GET", "/pipelines/vars-doc/export")).body;
    expect(exported.variables).toEqual([NAME, CLIP]);
    expect(exported.nodes[1].asset).toEqual({ type: "video", variable: "clip" });

    const imported = await call("POST", "/pipelines/import", exported);
    expect(imported.status).toBe(201);
    expect(imported.body.pipeline.variables).toEqual([NAME, CLIP]);
    expect((await call("GET", `/pipelines/${imported.body.pipeline.id}/variables`)).body.variables).toEqual([NAME, CLIP]);

    // A document without variables is still one (none declared); one whose nodes use undeclared ones is not.
    const { variables: _, ...plain } = exported;
    const refused = await call("POST", "/pipelines/import", plain);
    expect(refused.status).toBe(422);
    expect(refused.body.problems.map((p: { node?: string; path?: string }) => [p.node, p.path])).toEqual([
      ["s", "asset"],
      ["c", "asset"],
    ]);
    const badDeclaration = await call("POST", "/pipelines/import", { ...exported, variables: [{ name: "x y", type: "text" }] });
    expect(badDeclaration.status).toBe(422);
    expect(badDeclaration.body.problems[0]).toMatchObject({ path: "variables.0.name" });
    const none = await call("POST", "/pipelines/import", { ...plain, nodes: [{ id: "s", title: "S", type: "asset", asset: { type: "text", content: "Hi" } }] });
    expect(none.status).toBe(201);
    expect(none.body.pipeline.variables).toEqual([]);
  });
});
