import { describe, expect, it } from "vitest";
import { freePort } from "./processes";
import { ensureTestServices } from "./containers";

describe("ensureTestServices", () => {
  it("uses the local services as they are when they answer", async () => {
    const env = { DATABASE_ADMIN_URL: process.env.DATABASE_ADMIN_URL, NATS_URL: process.env.NATS_URL };
    const stop = await ensureTestServices(env);
    await stop();
    expect(env).toEqual({ DATABASE_ADMIN_URL: process.env.DATABASE_ADMIN_URL, NATS_URL: process.env.NATS_URL });
  });

  it("fails loudly, saying how to fix it, when a service is down and there is no Docker engine", async () => {
    // This machine kind has the docker CLI but no engine, so this is the no-fallback path.
    const closed = await freePort();
    await expect(ensureTestServices({ DATABASE_ADMIN_URL: `postgres://postgres@127.0.0.1:${closed}/x`, NATS_URL: process.env.NATS_URL })).rejects.toThrow(
      new RegExp(`PostgreSQL at 127.0.0.1:${closed} not reachable and no Docker engine for testcontainers`),
    );
  });
});
