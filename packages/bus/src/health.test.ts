import { describe, expect, it } from "vitest";
import { startHealthServer } from "./health";

describe("startHealthServer", () => {
  it("answers /health always and /ready from isReady()", async () => {
    let ready = false;
    const h = await startHealthServer(0, () => ready);
    try {
      const base = `http://127.0.0.1:${h.port}`;
      expect((await fetch(`${base}/health`)).status).toBe(200);
      expect((await fetch(`${base}/ready`)).status).toBe(503);
      ready = true;
      expect((await fetch(`${base}/ready`)).status).toBe(200);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      await h.close();
    }
  });
});
