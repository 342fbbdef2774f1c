import { describe, expect, it } from "vitest";
import { logText } from "./logger";
import { formatLogLine } from "./pretty-line";

/** What a terminal would act on, other than the printer's own dim styling around the fields. */
const controls = (line: string) =>
  line
    .replaceAll("\u001b[2m", "")
    .replaceAll("\u001b[0m", "")
    .match(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g) ?? [];

describe("the printed log line", () => {
  it("a value with a newline, ANSI codes or bidi controls stays on one line, escaped", () => {
    const sub = 'dev\n{"level":30,"msg":"admin signed in"}\u001b[2K\u001b[1A\u202eevil';
    const line = JSON.stringify({ level: 30, time: "t", pid: 1, hostname: "h", service: "gateway", msg: `request\r\nINFO  forged`, sub, requestId: "r1" });
    const printed = formatLogLine(line);
    expect(controls(printed)).toEqual([]);
    expect(printed).toBe(
      'INFO  request\\u000d\\u000aINFO  forged  \u001b[2msub=dev\\u000a{"level":30,"msg":"admin signed in"}\\u001b[2K\\u001b[1A\\u202eevil requestId=r1\u001b[0m',
    );
  });

  it("nested objects, keys and a line that is not JSON are escaped too", () => {
    expect(controls(formatLogLine(JSON.stringify({ level: 40, msg: "m", ["k\u001b[31m"]: { v: "x\u2028y" } })))).toEqual([]);
    expect(formatLogLine("plain \u001b[31mred\u001b[0m text")).toBe("plain \\u001b[31mred\\u001b[0m text");
    expect(formatLogLine("[1,2]")).toBe("[1,2]");
  });

  it("long values are capped and say how much was cut", () => {
    expect(logText("x".repeat(250))).toBe(`${"x".repeat(200)}…(+50 chars)`);
    expect(logText("a\u0007b", 10)).toBe("a\\u0007b");
    expect(formatLogLine(JSON.stringify({ level: 30, msg: "m", big: "y".repeat(5000) }))).toContain(`big=${"y".repeat(2000)}…(+3000 chars)`);
  });
});
