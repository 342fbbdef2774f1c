/** The batch page's CSV reading without a browser: quoting, line breaks, the header, values for the variables. */
import { describe, expect, it } from "vitest";
import { batchRowsOf, parseCsv } from "../../web/lib/csv";

describe("parseCsv", () => {
  it("reads quoted cells (commas, doubled quotes, line breaks inside), CRLF or LF, a BOM; blank lines are skipped", () => {
    const table = parseCsv('\uFEFFname, age \r\n"Linus, the third",3\r\n\r\n"She said ""hi""\nand left",\nAda,36');
    expect(table.header).toEqual(["name", "age"]);
    expect(table.rows).toEqual([
      ["Linus, the third", "3"],
      ['She said "hi"\nand left', ""],
      ["Ada", "36"],
    ]);
  });

  it("says on which line a quoted cell is never closed", () => {
    expect(() => parseCsv('name\nAda\n"Grace\nHopper\n')).toThrow("line 3");
  });

  it("an empty file has no header and no rows", () => {
    expect(parseCsv("")).toEqual({ header: [], rows: [] });
  });
});

describe("batchRowsOf", () => {
  it("keys each row by column, a number variable's number cell as a number, empty cells left out (the default applies)", () => {
    const table = parseCsv("name,age,clip\nAda, 36 ,https://example.com/a.mp4\nGrace,,\nLinus,three,x");
    const rows = batchRowsOf(table, [
      { name: "name", type: "text" },
      { name: "age", type: "number" },
      { name: "clip", type: "video" },
    ]);
    expect(rows).toEqual([{ name: "Ada", age: 36, clip: "https://example.com/a.mp4" }, { name: "Grace" }, { name: "Linus", age: "three", clip: "x" }]);
  });
});
