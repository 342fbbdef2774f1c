import { describe, expect, it } from "vitest";
import { BusUnavailableError, InvalidPayloadError, RemoteHandlerError, RequestTimeoutError, RetryAfterError } from "@vp/bus";
import { createLogger } from "@vp/telemetry";
import { retryLaterIfUnavailable, untilStored } from "./until-stored";

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
