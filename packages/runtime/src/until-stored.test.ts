import { describe, expect, it } from "vitest";
import { BusUnavailableError, InvalidPayloadError, RemoteHandlerError, RequestTimeoutError, RetryAfterError } from "@vp/bus";
import { createLogger } from "@vp/telemetry";
import { retryLaterIfUnavailable, untilReachable, untilStored } from "./until-stored";

const logger = createLogger({ service: "test", level: "silent" });

describe("untilStored", () => {
  it("publishes again while the bus is unavailable, then returns what was stored", async () => {
    let calls = 0;
    const stored = await untilStored(
      async () => {
        calls++;
        if (calls < 3) throw new BusUnavailableError("publish timed out");
        return "ack";
      },
      new AbortController().signal,
      logger,
      "result",
    );
    expect({ stored, calls }).toEqual({ stored: "ack", calls: 3 });
  });

  it("throws other errors at once", async () => {
    let calls = 0;
    const failing = untilStored(
      async () => {
        calls++;
        throw new InvalidPayloadError("bad");
      },
      new AbortController().signal,
      logger,
      "result",
    );
    await expect(failing).rejects.toBeInstanceOf(InvalidPayloadError);
    expect(calls).toBe(1);
  });

  it("gives up with the last error once its signal is aborted (shutdown hands the job back)", async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    await expect(
      untilStored(
        async () => {
          throw new RequestTimeoutError("no ack");
        },
        abort.signal,
        logger,
        "result",
      ),
    ).rejects.toBeInstanceOf(RequestTimeoutError);
  });
});

describe("untilReachable", () => {
  const never = new AbortController().signal;

  it("asks again while the state-writer is unavailable, then returns its answer", async () => {
    const errors = [
      new BusUnavailableError("no responders"),
      new RemoteHandlerError("vp.rpc.transition: connect ECONNREFUSED"),
      new RequestTimeoutError("no reply"),
    ];
    let calls = 0;
    const answer = await untilReachable(
      async () => {
        const error = errors[calls++];
        if (error) throw error;
        return "claimed";
      },
      never,
      logger,
      "claiming the node",
      60_000,
    );
    expect({ answer, calls }).toEqual({ answer: "claimed", calls: 4 });
  });

  it("hands the job back with a RetryAfterError once it has waited maxWaitMs", async () => {
    let calls = 0;
    const startedAt = Date.now();
    const waited = untilReachable(
      async () => {
        calls++;
        throw new BusUnavailableError("no responders");
      },
      never,
      logger,
      "claiming the node",
      600,
    );
    await expect(waited).rejects.toBeInstanceOf(RetryAfterError);
    await expect(waited).rejects.toThrow("claiming the node failed: no responders");
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(600);
    expect(calls).toBeGreaterThan(1);
  });

  it("hands the job back at once when its signal is aborted (shutdown)", async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 200);
    const startedAt = Date.now();
    await expect(
      untilReachable(
        async () => {
          throw new RequestTimeoutError("no reply");
        },
        abort.signal,
        logger,
        "claiming the node",
        60_000,
      ),
    ).rejects.toBeInstanceOf(RetryAfterError);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it("throws any other error unchanged, without asking again", async () => {
    let calls = 0;
    const error = Object.assign(new Error("permission denied for table video_production_nodes"), { code: "42501" });
    await expect(
      untilReachable(
        async () => {
          calls++;
          throw error;
        },
        never,
        logger,
        "reading the node's inputs",
        60_000,
        "the database",
      ),
    ).rejects.toBe(error);
    expect(calls).toBe(1);
  });
});

describe("retryLaterIfUnavailable", () => {
  it("turns an unavailable state-writer, NATS or Postgres into a RetryAfterError with the reason", () => {
    const cases: unknown[] = [
      new RemoteHandlerError("vp.rpc.transition: connect ECONNREFUSED 127.0.0.1:5432"),
      new RequestTimeoutError("no reply"),
      new BusUnavailableError("no responders"),
      Object.assign(new Error("the database system is starting up"), { code: "57P03" }),
      Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      new Error("Connection terminated unexpectedly"),
    ];
    for (const error of cases) {
      const mapped = retryLaterIfUnavailable(error, "the node could not be claimed");
      expect(mapped).toBeInstanceOf(RetryAfterError);
      expect((mapped as RetryAfterError).message).toBe(`the node could not be claimed: ${(error as Error).message}`);
      expect((mapped as RetryAfterError).delayMs).toBe(2000);
    }
  });

  it("leaves every other error alone", () => {
    const error = Object.assign(new Error("permission denied for table video_production_nodes"), { code: "42501" });
    expect(retryLaterIfUnavailable(error, "x")).toBe(error);
    const plain = new Error("boom");
    expect(retryLaterIfUnavailable(plain, "x")).toBe(plain);
  });
});
