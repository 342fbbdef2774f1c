import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { updateNodeStructure } from "./editor";
import { getNode } from "./reader";
import { patchNodeMetadata, recordProgress } from "./state";

// Architecture invariant 4: an editor changing title/config while a node runs never loses either side's writes.

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

describe("editor and state-writer writing the same node row at once", () => {
  it("loses no update on either side (50 editor + 50 metadata + 25 progress writes)", async () => {
    const P = "p-conc";
    await insertPipelineFixture(t.admin, { id: P });
    await insertNodeFixture(t.admin, {
      pipelineId: P,
      id: "n",
      type: "merge-videos",
      status: "in_progress",
      config: { provider: "ffmpeg" },
      metadata: { jobId: "j1", attempt: 1, retries: 0, startedAt: new Date().toISOString() },
    });

    const titles = Array.from({ length: 50 }, (_, i) => `Title ${i}`);
    const ops: Array<() => Promise<unknown>> = [];
    for (let i = 0; i < 50; i++) {
      ops.push(() => updateNodeStructure(t.pools.editor, P, "n", { title: titles[i], configPatch: { [`k${i}`]: i } }));
      ops.push(() => patchNodeMetadata(t.pools.stateWriter, P, "n", { [`m${i}`]: i }));
      if (i % 2 === 0) {
        ops.push(() => recordProgress(t.pools.stateWriter, { pipelineId: P, nodeId: "n", jobId: "j1", attempt: 1, percent: i }));
      }
    }
    const results = await Promise.all(shuffle(ops).map((op) => op()));
    expect(results.every((r) => r !== null)).toBe(true);

    const node = await getNode(t.admin, P, "n");
    expect(node).not.toBeNull();
    for (let i = 0; i < 50; i++) {
      expect(node!.config[`k${i}`]).toBe(i);
      expect((node!.metadata as Record<string, unknown>)[`m${i}`]).toBe(i);
    }
    expect(node!.config.provider).toBe("ffmpeg");
    expect(node!.metadata).toMatchObject({ jobId: "j1", attempt: 1 });
    expect(titles).toContain(node!.title);
    expect(node!.status).toBe("in_progress");
    // Every state-writer write bumped state_version exactly once; editor writes did not.
    expect(node!.state_version).toBe(75);
  });
});
