/** The auto-layout adapter without a browser: columns follow the data flow, no two boxes overlap, sizes are respected. */
import { describe, expect, it } from "vitest";
import { autoLayout, type LayoutInput } from "../../web/lib/auto-layout";
import { COLUMN_GAP } from "../../web/lib/layout";

type Box = { x: number; y: number; width: number; height: number };
const overlap = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

function boxes(nodes: LayoutInput[]): Map<string, Box> {
  const placed = autoLayout(nodes);
  return new Map(nodes.map((n) => [n.id, { ...placed.get(n.id)!, width: n.width ?? 264, height: n.height ?? 250 }]));
}

describe("autoLayout", () => {
  it("places every node after the nodes it takes input from, left to right, with the column gap between them", () => {
    const nodes: LayoutInput[] = [
      { id: "final", inputs: { segments: ["intro", "talk"] } },
      { id: "script", inputs: {} },
      { id: "voice", inputs: { script: ["script"] } },
      { id: "talk", inputs: { audio: ["voice"] } },
      { id: "intro", inputs: {} },
    ];
    const b = boxes(nodes);
    for (const n of nodes) {
      for (const up of Object.values(n.inputs).flat()) expect(b.get(up)!.x + b.get(up)!.width + COLUMN_GAP).toBeLessThanOrEqual(b.get(n.id)!.x);
    }
    expect(b.get("script")!.x).toBe(Math.min(...[...b.values()].map((x) => x.x)));
  });

  it("30 nodes of mixed sizes, wide and deep: no two boxes overlap, and the same graph always lays out the same way", () => {
    const nodes: LayoutInput[] = [];
    for (let i = 0; i < 10; i++) nodes.push({ id: `clip${i}`, inputs: {}, width: 264, height: 180 + (i % 3) * 60 });
    for (let i = 0; i < 10; i++) nodes.push({ id: `mix${i}`, inputs: { video: [`clip${i}`], audio: [`clip${(i + 1) % 10}`] }, width: 264, height: 300 });
    for (let i = 0; i < 9; i++) nodes.push({ id: `merge${i}`, inputs: { segments: [`mix${i}`, `mix${i + 1}`] }, width: 300, height: 220 });
    nodes.push({ id: "final", inputs: { segments: Array.from({ length: 9 }, (_, i) => `merge${i}`) }, width: 264, height: 400 });
    const b = [...boxes(nodes).entries()];
    const overlapping = b.flatMap(([a, boxA], i) =>
      b
        .slice(i + 1)
        .filter(([, boxB]) => overlap(boxA, boxB))
        .map(([id]) => [a, id]),
    );
    expect(overlapping).toEqual([]);
    expect(autoLayout(nodes)).toEqual(autoLayout(nodes));
  });

  it("ignores inputs that name no node on the canvas and nodes that name themselves", () => {
    const placed = autoLayout([
      { id: "a", inputs: { x: ["ghost"] } },
      { id: "b", inputs: { x: ["b", "a"] } },
    ]);
    expect(placed.get("a")!.x).toBeLessThan(placed.get("b")!.x);
  });
});
