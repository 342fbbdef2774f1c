/** The pipelines list's rules, without a browser: titles, each row's progress, import failures, export names. */
import { describe, expect, it } from "vitest";
import { ApiError, type ListedPipeline } from "../../web/lib/api";
import { exportFileName } from "../../web/lib/download";
import { checkTitle, filterPipelines, importFailure, pipelineProgress, readImport, sortPipelines } from "../../web/lib/pipelines";

const listed = (over: Partial<ListedPipeline>): ListedPipeline => ({
  id: "p",
  version: "1.0",
  title: "P",
  created_at: "",
  updated_at: "",
  config: {},
  metadata: {},
  ...over,
});

describe("checkTitle", () => {
  it("sends the title the gateway's schema accepts (trimmed) and says why it refuses one", () => {
    expect(checkTitle("  Episode 12 intro ")).toEqual({ ok: true, title: "Episode 12 intro" });
    expect(checkTitle("   ")).toEqual({ ok: false, error: "Title must not be empty" });
  });
});

describe("pipelineProgress", () => {
  it("counts completed, failed and running (queued or in progress) nodes, with the total cost", () => {
    const counts = { total: 6, pending: 1, queued: 1, in_progress: 2, completed: 1, failed: 1, cancelled: 0 };
    expect(pipelineProgress(listed({ node_counts: counts, metadata: { totalCost: 0.42 } }))).toEqual({ total: 6, done: 1, failed: 1, running: 3, cost: 0.42 });
  });

  it("is all zeros for a pipeline without counts or cost", () => {
    expect(pipelineProgress(listed({ metadata: { totalCost: "n/a" } }))).toEqual({ total: 0, done: 0, failed: 0, running: 0, cost: 0 });
  });
});

describe("import", () => {
  it("reads a file's JSON document, or says the file is not JSON", async () => {
    expect(await readImport(new File(['{"title":"T"}'], "t.pipeline.json"))).toEqual({ ok: true, document: { title: "T" } });
    const bad = await readImport(new File(["{ not json"], "bad.json"));
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.failure.message).toBe("bad.json is not valid JSON");
      expect(bad.failure.problems).toHaveLength(1);
    }
  });

  it("lists each problem the gateway found in a refused document, by its text when it has one", () => {
    const error = new ApiError(422, "the document is invalid", [
      { node: "a", path: "type", message: "unknown type", text: "Node a: unknown type" },
      { path: "title", message: "title must not be empty" },
    ]);
    expect(importFailure("x.json", error)).toEqual({
      message: "x.json was not imported: the document is invalid",
      problems: ["Node a: unknown type", "title must not be empty"],
    });
    expect(importFailure("x.json", new Error("offline"))).toEqual({ message: "x.json was not imported: offline", problems: [] });
  });
});

describe("exportFileName", () => {
  it("is the title as a slug of at most 60 characters, or 'pipeline'", () => {
    expect(exportFileName("Episode 12: Intro & Outro!")).toBe("episode-12-intro-outro.pipeline.json");
    expect(exportFileName("¡¡¡")).toBe("pipeline.pipeline.json");
    expect(exportFileName("a".repeat(80))).toBe(`${"a".repeat(60)}.pipeline.json`);
  });
});

describe("sortPipelines and filterPipelines", () => {
  const a = listed({ id: "a", title: "Episode 12 intro", updated_at: "2026-12-01T10:00:00Z" });
  const b = listed({ id: "b", title: "Café trailer", updated_at: "2026-12-03T10:00:00Z" });
  const c = listed({ id: "c", title: "Episode 13 outro", updated_at: "2026-12-03T10:00:00Z" });

  it("orders as the gateway does: last updated first, then by id", () => {
    expect(sortPipelines([a, c, b]).map((p) => p.id)).toEqual(["b", "c", "a"]);
    // A rename updates the row: it moves to the top.
    const renamed = { ...a, title: "Episode 12 opening", updated_at: "2026-12-04T09:00:00Z" };
    expect(sortPipelines([b, c, renamed]).map((p) => p.id)).toEqual(["a", "b", "c"]);
  });

  it("keeps titles holding every word searched, ignoring case and accents", () => {
    const list = [a, b, c];
    expect(filterPipelines(list, "").map((p) => p.id)).toEqual(["a", "b", "c"]);
    expect(filterPipelines(list, "  episode ").map((p) => p.id)).toEqual(["a", "c"]);
    expect(filterPipelines(list, "OUTRO 13").map((p) => p.id)).toEqual(["c"]);
    expect(filterPipelines(list, "cafe").map((p) => p.id)).toEqual(["b"]);
    expect(filterPipelines(list, "finale")).toEqual([]);
  });
});
