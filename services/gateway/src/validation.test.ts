import { describe, expect, it } from "vitest";
import { nodeFieldProblems } from "@vp/flow-graph";
import { assetPatchFor, CreateNodeBody, hasDotSegment, unstorablePath, UpdateNodeBody } from "./validation";

const messages = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) =>
  r.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`) ?? [];
/** What POST .../nodes says about an asset node: the body's shape, then the node's fields (the check every write path shares). */
const node = (asset: Record<string, unknown>) => {
  const r = CreateNodeBody.safeParse({ title: "a", type: "asset", asset });
  if (!r.success) return messages(r);
  return nodeFieldProblems({ type: r.data.type, config: r.data.config, asset: r.data.asset ?? null }).map((p) => `${p.path}: ${p.message}`);
};

describe("URL assets in the node bodies", () => {
  it("accepts an http(s) url on a video, audio or image asset", () => {
    for (const type of ["video", "audio", "image"]) {
      expect(node({ type, url: "https://media.example.com/clip.mp4" })).toEqual([]);
      expect(node({ type, url: "http://media.example.com:8080/a/b.mp3?x=1" })).toEqual([]);
    }
  });

  it.each([
    ["ftp://media.example.com/clip.mp4", "asset.url: must be an http:// or https:// URL"],
    ["file:///etc/passwd", "asset.url: must be an http:// or https:// URL"],
    ["javascript:alert(1)", "asset.url: must be an http:// or https:// URL"],
    ["/etc/passwd", "asset.url: must be an http:// or https:// URL"],
    ["../../etc/passwd", "asset.url: must be an http:// or https:// URL"],
    ["http://user:secret@media.example.com/clip.mp4", "asset.url: must not contain a user name or password"],
    ["http://media.example.com/a b.mp4", "asset.url: must not contain whitespace, control characters or backslashes"],
    ["http://media.example.com/\u0000", "asset.url: must not contain whitespace, control characters or backslashes"],
    ["http:\\\\media.example.com\\clip.mp4", "asset.url: must not contain whitespace, control characters or backslashes"],
    ["http://", "asset.url: is not a valid URL"],
    [`https://media.example.com/${"a".repeat(2048)}`, "asset.url: must be at most 2048 characters"],
  ])("refuses %s", (url, reason) => {
    expect(node({ type: "video", url })).toEqual([reason]);
  });

  it("refuses a url on text and json assets, and next to inline content", () => {
    expect(node({ type: "text", url: "https://x.example/a.txt" })).toEqual(["asset.url: text assets take inline content or an upload, not a url"]);
    expect(node({ type: "video", url: "https://x.example/a.mp4", content: "hi" })).toEqual(["asset.url: an asset takes content or a url, not both"]);
    expect(node({ type: "video", url: 42 })).toEqual(["asset.url: Invalid input: expected string, received number"]);
  });

  it("gives an asset one origin on PATCH: a url drops an upload and content, content or text drops a url", () => {
    const uploaded = {
      type: "video",
      source: "pipelines/p/nodes/n/assets/u.mp4",
      size: 10,
      contentType: "video/mp4",
      name: "clip.mp4",
      uploadedAt: "2026-11-21T00:00:00Z",
    };
    const patch = (asset: unknown) => UpdateNodeBody.parse({ asset }).asset!;
    expect(assetPatchFor(uploaded, patch({ url: "https://x.example/a.mp4" }))).toEqual({
      url: "https://x.example/a.mp4",
      source: null,
      size: null,
      contentType: null,
      name: null,
      uploadedAt: null,
    });
    expect(assetPatchFor(null, patch({ url: "https://x.example/a.mp4" }))).toEqual({ url: "https://x.example/a.mp4" });
    const linked = { type: "video", url: "https://x.example/a.mp4" };
    expect(assetPatchFor(linked, patch({ type: "text", content: "hello" }))).toEqual({ type: "text", content: "hello", url: null });
    expect(assetPatchFor(linked, patch({ type: "audio" }))).toEqual({ type: "audio" });
    // The patched asset goes through the one field check: a url does not fit a json asset.
    const json = { type: "json", content: "{}" };
    const merged = { ...json, ...assetPatchFor(json, patch({ url: "https://x.example/a.json" })) };
    expect(nodeFieldProblems({ type: "asset", config: {}, asset: merged })).toEqual([
      { path: "asset.url", message: "json assets take inline content or an upload, not a url" },
    ]);
  });
});

describe("request hygiene", () => {
  it("finds dot segments in the raw request target, however spelled", () => {
    for (const target of ["/a/../b", "/a/./b", "/a/..", "/a/%2e%2e/b", "/a/%2E./b", "/a/.%2e", "/a/%2e/b", "/v1/x/nodes/../cancel?x=1"])
      expect(hasDotSegment(target), target).toBe(true);
    for (const target of ["/a/b", "/a/..b/c", "/a/b..", "/a/...", "/a/b?x=../..", "/a/%2e%2e%2fetc"]) expect(hasDotSegment(target), target).toBe(false);
  });

  it("finds NUL characters in strings and keys at any depth, without recursion", () => {
    expect(unstorablePath({ a: [{ b: "ok" }, { c: "x\u0000" }] })?.path).toBe("a.1.c");
    expect(unstorablePath({ ["k\u0000"]: 1 })?.path).toBe("k\u0000");
    expect(unstorablePath("\u0000")?.path).toBe("body");
    expect(unstorablePath({ a: "fine", b: [1, true, null] })).toBeNull();
    let deep: unknown = "x\u0000";
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(unstorablePath(deep)?.path.split(".").length).toBe(100_000);
  });

  it("finds lone UTF-16 surrogates in strings and keys, and lets paired ones (emoji) through", () => {
    expect(unstorablePath({ config: { script: "hi \ud800" } })).toEqual({ path: "config.script", reason: expect.stringMatching(/lone UTF-16 surrogate/) });
    expect(unstorablePath({ a: ["\udfffx"] })?.path).toBe("a.0");
    expect(unstorablePath({ ["k\udc00"]: 1 })?.reason).toMatch(/lone UTF-16 surrogate/);
    expect(unstorablePath({ title: "clip \ud83c\udfac", b: "\u{1F600}" })).toBeNull();
  });
});
