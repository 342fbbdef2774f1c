import { describe, expect, it } from "vitest";
import { cacheKey, canonicalJson, keysKnownNow, nothingToRunReason, outputIdentity, runMembers, staleNodes, type KeyedNode } from "./cache-key";
import { estimateRun, formatUsd, formatUsdApart, overBudgetReason } from "./estimate";

const hash = (c: string) => c.repeat(64);
const asset = (id: string, extra: Partial<KeyedNode> = {}): KeyedNode => ({
  id,
  type: "asset",
  inputs: {},
  config: {},
  asset: { type: "video", source: `uploads/${id}.mp4` },
  status: "completed",
  output: { type: "video", s3Key: `uploads/${id}.mp4`, contentHash: hash(id.slice(-1)) },
  ...extra,
});
const merge = (id: string, segments: string[], extra: Partial<KeyedNode> = {}): KeyedNode => ({
  id,
  type: "merge-videos",
  inputs: { segments },
  config: {},
  status: "pending",
  ...extra,
});
const lookup = (...nodes: KeyedNode[]) => new Map(nodes.map((n) => [n.id, n]));

describe("cache keys", () => {
  it("canonical JSON ignores key order and undefined", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: undefined }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":2}]},"b":1}');
  });

  it("depend on type, config, inputs' content and their order; not on ids, titles or storage keys of inputs", () => {
    const a = asset("a");
    const b = asset("b");
    const m = merge("m", ["a", "b"]);
    const key = cacheKey(m, lookup(a, b, m))!;
    expect(key).toMatch(/^[a-f0-9]{64}$/);
    // The same bytes under other ids and storage keys (another pipeline): the same key.
    const a2 = asset("x-a", { output: { type: "video", s3Key: "elsewhere/1.mp4", contentHash: hash("a") } });
    const b2 = asset("x-b", { output: { type: "video", s3Key: "elsewhere/2.mp4", contentHash: hash("b") } });
    expect(cacheKey(merge("other", ["x-a", "x-b"]), lookup(a2, b2))).toBe(key);
    // Order, content, config and type change it.
    expect(cacheKey(merge("m", ["b", "a"]), lookup(a, b))).not.toBe(key);
    expect(cacheKey(m, lookup(a, asset("b", { output: { type: "video", s3Key: "k", contentHash: hash("z") } })))).not.toBe(key);
    expect(cacheKey(merge("m", ["a", "b"], { config: { reencode: "always" } }), lookup(a, b))).not.toBe(key);
    // The provider is part of the key (provider and model version decide the result).
    expect(cacheKey(merge("m", ["a", "b"], { config: { provider: "lambda" } }), lookup(a, b))).not.toBe(key);
    // Titles and positions are not: only what decides the result.
    expect(cacheKey({ ...m, title: "renamed", position: { x: 1, y: 2 } } as KeyedNode, lookup(a, b, m))).toBe(key);
  });

  it("cannot be known while an input is not completed", () => {
    expect(cacheKey(merge("m", ["a", "b"]), lookup(asset("a"), asset("b", { status: "pending", output: null })))).toBeNull();
    expect(cacheKey(merge("m", ["a", "ghost"]), lookup(asset("a")))).toBeNull();
  });

  it("an output without a content hash is identified by its record", () => {
    expect(outputIdentity({ type: "text", s3Key: "a" })).not.toBe(outputIdentity({ type: "text", s3Key: "b" }));
    expect(outputIdentity({ type: "text", s3Key: "a", contentHash: hash("f") })).toBe(hash("f"));
  });
});

describe("stale nodes and run members", () => {
  const a = asset("a");
  const b = asset("b");
  const recorded = (n: KeyedNode, nodes: Map<string, KeyedNode>): KeyedNode => ({
    ...n,
    status: "completed",
    metadata: { cacheKey: cacheKey(n, nodes) },
    output: { type: "video", s3Key: `out/${n.id}`, contentHash: hash(n.id.slice(-1)) },
  });

  it("a completed node is stale when its key moved, and so is everything downstream of it", () => {
    const m1 = recorded(merge("m1", ["a", "b"]), lookup(a, b));
    const m2 = recorded(merge("m2", ["m1", "a"]), lookup(a, b, m1));
    const side = recorded(merge("s", ["a", "a"]), lookup(a));
    expect(staleNodes([a, b, m1, m2, side])).toEqual(new Set());
    const edited = { ...m1, config: { reencode: "always" } };
    expect(staleNodes([a, b, edited, m2, side])).toEqual(new Set(["m1", "m2"]));
    // An input that is not completed any more makes its completed dependants stale too.
    expect(staleNodes([a, { ...b, status: "failed" as const }, m1, m2, side])).toEqual(new Set(["m1", "m2"]));
  });

  it("run all covers every node; run to here covers the target and what is not current upstream of it", () => {
    const m1 = recorded(merge("m1", ["a", "b"]), lookup(a, b));
    const m2 = merge("m2", ["m1", "a"]);
    const m3 = merge("m3", ["m2", "a"]);
    const rows = [a, b, { ...m1, config: { reencode: "always" } }, m2, m3];
    const stale = staleNodes(rows);
    expect(runMembers(rows, stale, {})).toEqual(["a", "b", "m1", "m2", "m3"]);
    expect(runMembers(rows, stale, { targetNodeId: "m2" })).toEqual(["m1", "m2"]);
    expect(keysKnownNow(rows, ["m1", "m2"], stale)).toEqual(new Map([["m1", cacheKey(rows[2]!, lookup(...rows))]]));
  });

  it("a disabled node and everything downstream of it are left out of runs; a target among them runs nothing, with the reason", () => {
    const m1 = { ...merge("m1", ["a", "b"]), title: "Intro", disabled: true };
    const m2 = { ...merge("m2", ["m1", "a"]), title: "Final" };
    const side = merge("s", ["a", "b"]);
    const rows = [a, b, m1, m2, side];
    const stale = staleNodes(rows);
    expect(runMembers(rows, stale, {})).toEqual(["a", "b", "s"]);
    expect(runMembers(rows, stale, { targetNodeId: "m2" })).toEqual([]);
    expect(runMembers(rows, stale, { targetNodeId: "m1" })).toEqual([]);
    expect(runMembers(rows, stale, { targetNodeId: "s" })).toEqual(["s"]);
    expect(nothingToRunReason(rows, { targetNodeId: "m2" })).toBe('"Final" (m2) cannot run: "Intro" (m1) upstream of it is disabled (enable it first)');
    expect(nothingToRunReason(rows, { targetNodeId: "m1" })).toBe('"Intro" (m1) is disabled: enable it to run it');
    expect(nothingToRunReason([{ ...a, disabled: true }], {})).toBe("Nothing to run: every node is disabled or downstream of a disabled node");
    expect(nothingToRunReason([], {})).toBe("Nothing to run: the pipeline has no nodes");
    // Enabled again, it is a member like any other.
    expect(runMembers([a, b, { ...m1, disabled: false }, m2, side], stale, {})).toEqual(["a", "b", "m1", "m2", "s"]);
  });
});

describe("estimates", () => {
  const script: KeyedNode = {
    id: "s",
    type: "asset",
    inputs: {},
    config: {},
    asset: { type: "text", content: "word ".repeat(300) },
    status: "completed",
    output: { type: "text", s3Key: "s" },
  };
  const head: KeyedNode = { id: "h", type: "talking-head", inputs: { script: ["s"] }, config: { provider: "heygen" }, status: "pending" };
  const local: KeyedNode = { id: "l", type: "talking-head", inputs: { script: ["s"] }, config: { provider: "local" }, status: "pending" };
  const mergeNode: KeyedNode = merge("m", ["h", "l"]);

  it("prices AI nodes by their provider, local work and cached or current members at 0, and checks the budget", () => {
    const e = estimateRun([script, head, local, mergeNode], ["s", "h", "l", "m"], { upToDate: new Set(["s"]), maxCost: 1 });
    expect(e.nodes.map((n) => [n.nodeId, n.source])).toEqual([
      ["s", "up-to-date"],
      ["h", "execute"],
      ["l", "execute"],
      ["m", "execute"],
    ]);
    const [, h, l, m] = e.nodes;
    expect(h!.estimatedCost).toBeGreaterThan(1);
    expect(l!.estimatedCost).toBeLessThan(h!.estimatedCost / 100);
    expect(m!.estimatedCost).toBe(0);
    expect(e).toMatchObject({ maxCost: 1, withinBudget: false, costSaved: 0 });
    expect(e.estimatedTotalCost).toBeCloseTo(h!.estimatedCost + l!.estimatedCost, 6);
    expect(overBudgetReason(e)).toMatch(/^Estimated cost \$\d+\.\d\d exceeds the pipeline's budget \(maxCost\) of \$1\.00: h \$\d+\.\d\d/);

    const cached = estimateRun([script, head, local, mergeNode], ["h"], { cached: new Map([["h", 3.25]]), maxCost: 1 });
    expect(cached).toMatchObject({ estimatedTotalCost: 0, withinBudget: true, costSaved: 3.25, nodes: [{ nodeId: "h", source: "cached", costSaved: 3.25 }] });
    expect(estimateRun([head], ["h"]).withinBudget).toBe(true); // no maxCost: no budget

    // A photo avatar is priced at HeyGen's photo-avatar rate ($0.05/s against $0.0667/s).
    const photo: KeyedNode = { ...head, id: "p", config: { provider: "heygen", avatarType: "photo_avatar" } };
    const [studio, photoAvatar] = estimateRun([script, head, photo], ["h", "p"]).nodes;
    expect(photoAvatar!.estimatedCost / studio!.estimatedCost).toBeCloseTo(0.05 / 0.0667, 3);
  });

  it("over budget: amounts shown precisely enough to differ, nodes named by title", () => {
    const titled = { ...local, title: "Local presenter" };
    const e = estimateRun([script, titled], ["l"], { maxCost: 0 });
    expect(e.withinBudget).toBe(false);
    const cost = e.estimatedTotalCost;
    expect(cost).toBeGreaterThan(0);
    expect(cost).toBeLessThan(0.01);
    const reason = overBudgetReason(e);
    expect(reason).not.toContain("$0.00 exceeds");
    const [shown, zero] = formatUsdApart(cost, 0);
    expect(reason).toBe(`Estimated cost ${shown} exceeds the pipeline's budget (maxCost) of ${zero}: "Local presenter" (l) ${formatUsd(cost)}`);
    expect(formatUsd(cost)).toMatch(/^\$0\.00\d*[1-9]\d*$/);
    expect(e.nodes[0]).toMatchObject({ nodeId: "l", title: "Local presenter" });
  });
});

describe("formatUsdApart", () => {
  it("uses cents when they tell the amounts apart, more decimals when they do not, never $0.00 for a non-zero amount", () => {
    expect(formatUsdApart(1.2, 1)).toEqual(["$1.20", "$1.00"]);
    expect(formatUsdApart(0.00013, 0)).toEqual(["$0.0001", "$0.0000"]);
    expect(formatUsdApart(0.00013, 0.0001)).toEqual(["$0.00013", "$0.00010"]);
    expect(formatUsdApart(0.000003)).toEqual(["$0.000003"]);
    expect(formatUsdApart(0.05, 0.05)).toEqual(["$0.05", "$0.05"]);
    expect(formatUsdApart(0)).toEqual(["$0.00"]);
  });
});
