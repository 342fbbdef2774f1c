import { describe, expect, it } from "vitest";
import { codeTiming, languageOf, normalizeCode, resolveProps, sliceTokens, tokenize, tokenLines, visibleChars } from "./index";

describe("timing", () => {
  it("lead-in, typing in whole frames, hold", () => {
    const t = codeTiming({ code: "x".repeat(100), typingSpeed: 30, fps: 30 });
    expect(t).toMatchObject({ chars: 100, leadInFrames: 15, typingFrames: 100, holdFrames: 45, durationInFrames: 160 });
    expect(t.durationSeconds).toBeCloseTo(160 / 30, 10);
    expect(codeTiming({ code: "abc", typingSpeed: 7, fps: 15 })).toMatchObject({ leadInFrames: 8, typingFrames: 7, holdFrames: 23 });
    expect(() => codeTiming({ code: "x", typingSpeed: 0, fps: 30 })).toThrow(RangeError);
  });

  it("shows nothing during the lead-in, everything from the last typing frame on", () => {
    const t = codeTiming({ code: "x".repeat(60), typingSpeed: 30, fps: 30 });
    expect(visibleChars(0, t, 30, 30)).toBe(0);
    expect(visibleChars(t.leadInFrames - 1, t, 30, 30)).toBe(0);
    expect(visibleChars(t.leadInFrames, t, 30, 30)).toBe(1);
    expect(visibleChars(t.leadInFrames + t.typingFrames - 1, t, 30, 30)).toBe(60);
    expect(visibleChars(t.durationInFrames - 1, t, 30, 30)).toBe(60);
  });

  it("normalises what is typed", () => {
    expect(normalizeCode("\n\nif (x) {\r\n\treturn 1;   \r\n}\n\n\n")).toBe("if (x) {\n    return 1;\n}");
    expect(resolveProps({ code: "a", width: 481, height: 271, highlightLines: [3, 1, 3, 0, 2.5] })).toMatchObject({
      width: 482,
      height: 272,
      highlightLines: [1, 3],
      theme: "dark",
      typingSpeed: 30,
      fps: 30,
    });
    expect(resolveProps({ code: "a", theme: "neon" }).theme).toBe("dark");
  });
});

describe("highlighter", () => {
  const code = `// sum\nconst total = items.reduce((a, b) => a + b, 0); /* done */\nconst s = "it's \\"quoted\\"";\nclass Clip {}`;

  it("gives the code back exactly and colours what it knows", () => {
    const tokens = tokenize(code, "TypeScript");
    expect(tokens.map((t) => t.text).join("")).toBe(code);
    const kinds = (text: string) => tokens.find((t) => t.text.includes(text))?.kind;
    expect(kinds("// sum")).toBe("comment");
    expect(kinds("const")).toBe("keyword");
    expect(kinds("reduce")).toBe("function");
    expect(kinds("0")).toBe("number");
    expect(kinds("/* done */")).toBe("comment");
    expect(kinds('"it')).toBe("string");
    expect(kinds("Clip")).toBe("type");
    expect(tokenLines(tokens)).toHaveLength(4);
  });

  it("python, unknown languages, and a partly typed line", () => {
    const py = tokenize('def f(x):\n    return """doc""" # why', "py");
    expect(py.find((t) => t.text === "def")?.kind).toBe("keyword");
    expect(py.find((t) => t.text.startsWith('"""'))?.kind).toBe("string");
    expect(py.at(-1)).toEqual({ text: "# why", kind: "comment" });
    expect(languageOf("Brainfuck")).toBe("plain");
    expect(
      tokenize("a'b", "cobol")
        .map((t) => t.text)
        .join(""),
    ).toBe("a'b");
    const typed = sliceTokens(tokenize("const x = 1;", "js"), 7);
    expect(typed.map((t) => t.text).join("")).toBe("const x");
    expect(
      sliceTokens(tokenize("😀😀", "plain"), 1)
        .map((t) => t.text)
        .join(""),
    ).toBe("");
  });
});
