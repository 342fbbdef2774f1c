/** OwnRevisions without a browser: a page's own quick edits of one node do not refuse each other; another page's do. */
import { describe, expect, it } from "vitest";
import { OwnRevisions } from "../../web/lib/node-edits";

describe("OwnRevisions", () => {
  it("rebases an edit begun at r over this page's own writes since (a rename, then a provider picked)", () => {
    const own = new OwnRevisions();
    // The title field took revision 4 when focused; the media type was changed (4 → 6), then the name saved (6 → 9).
    own.wrote("a", 4, 6);
    expect(own.current("a", 4)).toBe(6);
    expect(own.rebase("a", 4, own.current("a", 4))).toBe(6);
    own.wrote("a", 6, 9);
    expect(own.rebase("a", 4, own.current("a", 6))).toBe(9);
    // Other nodes have their own chains.
    expect(own.rebase("b", 4, 9)).toBe(4);
  });

  it("keeps the base when another page changed the node in between, so the gateway refuses the write as before", () => {
    const own = new OwnRevisions();
    own.wrote("a", 4, 6);
    // Another page moved it to 7 (seen on the event stream); this page then wrote 7 → 8.
    own.wrote("a", 7, 8);
    expect(own.current("a", 7)).toBe(8);
    expect(own.rebase("a", 4, 8)).toBe(4);
    // An edit begun at 7 (after the other page's change) is rebased over this page's own 7 → 8.
    expect(own.rebase("a", 7, 8)).toBe(8);
    // The model is ahead of anything this page wrote: that change was someone else's.
    expect(own.current("a", 12)).toBe(12);
    expect(own.rebase("a", 7, 12)).toBe(7);
  });
});
