/** The config form's controls, without a browser: which input a field gets, its options and hints, overlay cards. */
import { describe, expect, it } from "vitest";
import { choiceOptions, fieldControl, languageOptions, LANGUAGES, overlayError, textHint } from "../../web/lib/field-controls";
import { overlayLayout } from "@vp/media";
import { errorCell, movedCells, parseCells, pictureSize, placementOf, resizedSize, specOf, toValue, withCell } from "../../web/lib/overlays";
import { configFields } from "../../web/lib/schema-form";

const field = (type: Parameters<typeof configFields>[0], key: string) => configFields(type).find((f) => f.key === key)!;

describe("fieldControl", () => {
  it("gives the code animation, AI providers and overlays their own inputs, the rest one per kind", () => {
    expect(fieldControl("render-code", field("render-code", "code"))).toBe("code");
    expect(fieldControl("render-code", field("render-code", "language"))).toBe("language");
    expect(fieldControl("generate-voiceover", field("generate-voiceover", "provider"))).toBe("provider");
    expect(fieldControl("compose-video", field("compose-video", "overlays"))).toBe("overlays");
    expect(fieldControl("merge-videos", field("merge-videos", "reencode"))).toBe("choice");
    expect(fieldControl("merge-videos", field("merge-videos", "width"))).toBe("text");
    expect(fieldControl("render-code", field("render-code", "highlightLines"))).toBe("text");
    expect(fieldControl("merge-videos", { key: "x", label: "X", kind: "json" })).toBe("multiline");
    expect(fieldControl("merge-videos", { key: "x", label: "X", kind: "text", multiline: true })).toBe("multiline");
  });

  it("offers the options and hints each input shows", () => {
    expect(languageOptions("")).toBe(LANGUAGES);
    expect(languageOptions("python")).toBe(LANGUAGES);
    expect(languageOptions("rust")).toEqual([...LANGUAGES, "rust"]);
    expect(choiceOptions({ key: "b", label: "B", kind: "boolean" })).toEqual(["true", "false"]);
    expect(choiceOptions(field("merge-videos", "reencode"))).toEqual(["auto", "always"]);
    expect(textHint(field("merge-videos", "width"))).toBe("whole number 16–7680");
    expect(textHint({ key: "n", label: "N", kind: "number", max: 5 })).toBe("…–5");
    expect(textHint({ key: "l", label: "L", kind: "number-list" })).toBe("e.g. 1, 4, 5");
    expect(textHint({ key: "t", label: "T", kind: "text" })).toBe("");
  });

  it("names an overlay error by card and field", () => {
    expect(overlayError("0.size: Too big: expected number to be <=1")).toBe("Overlay 1 size: Too big: expected number to be <=1");
    expect(overlayError("must be an array")).toBe("must be an array");
  });
});

describe("overlay cells", () => {
  it("read an overlays value as rows of text, and refuse anything but an array", () => {
    expect(parseCells("")).toEqual([]);
    expect(parseCells('[{"position":"custom","x":10,"size":0.3},null]')).toEqual([{ position: "custom", x: "10", size: "0.3" }, {}]);
    expect(parseCells('{"position":"center"}')).toBeNull();
    expect(parseCells("[{")).toBeNull();
  });

  it("write numbers as numbers, leave empty cells and trailing empty overlays out", () => {
    expect(toValue([{ position: "center", size: " 0.25 ", startSeconds: "" }, {}, { x: "" }])).toBe('[{"position":"center","size":0.25}]');
    expect(toValue([{ size: "big" }])).toBe('[{"size":"big"}]');
    expect(toValue([{}, { x: "" }])).toBe("");
  });

  it("change one cell, creating the rows before it", () => {
    const rows = [{ size: "0.2" }];
    expect(withCell(rows, 2, "position", "center")).toEqual([{ size: "0.2" }, {}, { position: "center" }]);
    expect(rows).toEqual([{ size: "0.2" }]);
  });

  it("find the cell a schema error is about", () => {
    expect(errorCell("1.startSeconds: Too small")).toEqual({ index: 1, key: "startSeconds" });
    expect(errorCell("must be an array")).toBeNull();
    expect(errorCell(undefined)).toBeNull();
  });
});

describe("overlay placement", () => {
  const frame = { width: 640, height: 360 };
  const picture = { width: 320, height: 180 };

  it("reads the cells as packages/media does, leaving a value that is not valid yet to its default", () => {
    expect(specOf({ position: "custom", x: "12", y: "8", size: "0.4" })).toEqual({ position: "custom", x: 12, y: 8, size: 0.4 });
    expect(specOf({ position: "middle", x: "-3", size: "3", borderWidth: "abc" })).toEqual({});
    expect(placementOf(frame, picture, { size: "3" }, 1)).toEqual(overlayLayout(frame, picture, {}, 1));
  });

  it("a frame's size: the output's, else the width and height its config asks for", () => {
    expect(pictureSize({ output: { width: 640, height: 360 }, config: { width: 1920, height: 1080 } })).toEqual(frame);
    expect(pictureSize({ output: null, config: { width: 1920, height: 1080 } })).toEqual({ width: 1920, height: 1080 });
    expect(pictureSize({ output: null, config: {} })).toBeUndefined();
  });

  it("a moved box becomes a custom position, kept inside the frame", () => {
    const box = overlayLayout(frame, picture, {}, 0);
    expect(movedCells(frame, box, 100.4, 50.6)).toEqual({ position: "custom", x: "100", y: "51" });
    expect(movedCells(frame, box, 900, -20)).toEqual({ position: "custom", x: String(640 - box.width), y: "0" });
  });

  it("a resized box keeps the corner its position holds still", () => {
    // Custom: the top-left stays; the handle is bottom-right, dragged 64 px right.
    const custom = overlayLayout(frame, picture, { position: "custom", x: 10, y: 10 }, 0);
    expect(resizedSize(frame, custom, "custom", custom.x + custom.width + 64, custom.y + custom.height)).toBe("0.35");
    // Bottom-right preset: the handle is top-left, dragged 64 px left.
    const corner = overlayLayout(frame, picture, { position: "bottom-right" }, 0);
    expect(resizedSize(frame, corner, "bottom-right", corner.x - 64, corner.y)).toBe("0.35");
    // Centred: both ways, so 32 px out on one side is 64 px wider.
    const centre = overlayLayout(frame, picture, { position: "center" }, 0);
    expect(resizedSize(frame, centre, "center", centre.x + centre.width + 32, centre.y + centre.height)).toBe("0.35");
    // Within the schema's 0.05–1.
    expect(resizedSize(frame, custom, "custom", custom.x, custom.y)).toBe("0.05");
    expect(resizedSize(frame, custom, "custom", 5000, 5000)).toBe("1");
  });
});
