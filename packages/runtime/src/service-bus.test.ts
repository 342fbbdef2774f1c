import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { busInboxPrefix } from "@vp/bus";
import { createTopology } from "@vp/contracts";
import { createLogger } from "@vp/telemetry";
import { connectServiceBus } from "./service-bus";

const NATS_URL = process.env.NATS_URL || "nats://127.0.0.1:4222";

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, next) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      next();
    },
  });
  return { lines, logger: createLogger({ service: "gateway", level: "info", destination: stream }) };
}

describe("connectServiceBus", () => {
  it("a service connecting without credentials (the machine's NATS has no users) warns at start-up, and reads replies under its own inbox", async () => {
    const { lines, logger } = capture();
    const topology = createTopology({ namespace: "svcbus" });
    const bus = await connectServiceBus({ service: "gateway", env: { NATS_URL }, topology, logger });
    try {
      const warning = lines.find(
        (l) => typeof l.msg === "string" && l.msg.startsWith("NATS without credentials: any client on the network may publish commands"),
      );
      expect(warning).toMatchObject({ level: 40, service: "gateway", natsUrl: NATS_URL });
      expect(bus.inboxPrefix).toBe(busInboxPrefix("gateway", topology));
      expect(bus.inboxPrefix).toBe("_INBOX.svcbus.gateway");
    } finally {
      await bus.close();
    }
  });

  it("refuses a user without a password (or a password without a user) before connecting", async () => {
    const { logger } = capture();
    const topology = createTopology();
    await expect(connectServiceBus({ service: "scheduler", env: { NATS_URL, NATS_USER: "scheduler" }, topology, logger })).rejects.toThrow(
      "NATS_USER and NATS_PASSWORD must be set together",
    );
    await expect(connectServiceBus({ service: "scheduler", env: { NATS_URL, NATS_PASSWORD: "x" }, topology, logger })).rejects.toThrow(
      "NATS_USER and NATS_PASSWORD must be set together",
    );
  });
});
