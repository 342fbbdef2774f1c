/**
 * The error handler's mapping of a database that went away. A PostgreSQL stopped in the middle of a write reached
 * the gateway as node-postgres's "Connection terminated unexpectedly" (no code) and answered 500; the soak's
 * PostgreSQL crash caught an import doing that. Every such error is a 503 the client may retry.
 */
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { createLogger } from "@vp/telemetry";
import { createErrorHandler } from "./errors";

async function answerTo(error: Error) {
  const app = new Hono();
  app.onError(createErrorHandler(createLogger({ service: "gateway-test", level: "silent" })));
  app.get("/", () => {
    throw error;
  });
  const res = await app.request("/");
  return { status: res.status, body: (await res.json()) as { error: string } };
}

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe("a database that went away is a 503, not a 500", () => {
  it.each([
    ["a connection cut mid-statement (no code)", new Error("Connection terminated unexpectedly")],
    ["an immediate shutdown (57P01)", withCode("terminating connection due to administrator command", "57P01")],
    ["a crash of another backend (57P02)", withCode("terminating connection because of crash of another server process", "57P02")],
    ["the server starting up (57P03)", withCode("the database system is starting up", "57P03")],
    ["a reset connection", withCode("read ECONNRESET", "ECONNRESET")],
    ["a refused connection", withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED")],
    ["a connection failure (08006)", withCode("connection failure", "08006")],
  ])("%s", async (_what, error) => {
    expect(await answerTo(error)).toEqual({ status: 503, body: { error: "The database is unavailable. Try again shortly." } });
  });

  it("anything else unexpected stays a 500 without internals", async () => {
    expect(await answerTo(withCode('relation "x" does not exist', "42P01"))).toEqual({ status: 500, body: { error: "Internal server error" } });
  });
});
