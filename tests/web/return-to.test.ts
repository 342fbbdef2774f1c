import { describe, expect, it } from "vitest";
import { safeReturnTo } from "../../web/lib/return-to";

describe("safeReturnTo", () => {
  it("keeps a path of the editor with its query and fragment", () => {
    expect(safeReturnTo("/pipelines/p1?node=a#panel")).toBe("/pipelines/p1?node=a#panel");
    expect(safeReturnTo("/")).toBe("/");
  });

  it("sends anything that could leave the editor to /", () => {
    for (const value of [
      "https://elsewhere.example/steal",
      "//elsewhere.example/steal",
      "/\\elsewhere.example",
      "\\\\elsewhere.example",
      "javascript:alert(1)",
      "pipelines/p1",
      "/\telsewhere",
      "",
      null,
      undefined,
      `/${"a".repeat(3000)}`,
    ]) {
      expect(safeReturnTo(value), String(value)).toBe("/");
    }
  });

  it("leaves percent-encoded line breaks encoded, so they cannot split the Location header", () => {
    expect(safeReturnTo("/%0d%0aSet-Cookie:x")).toBe("/%0d%0aSet-Cookie:x");
  });

  it("never returns to the sign-in routes themselves (no sign-in loop)", () => {
    expect(safeReturnTo("/auth/sign-in?returnTo=/")).toBe("/");
    expect(safeReturnTo("/auth/callback?code=x")).toBe("/");
    expect(safeReturnTo("/auth")).toBe("/");
    expect(safeReturnTo("/authors")).toBe("/authors");
  });
});
