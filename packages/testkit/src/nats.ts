/**
 * Test buses on the machine's real nats-server (JetStream on): every call gets its own random namespace
 * (`t<8 hex>`), so its streams (`t1a2b3c4d_VP_JOBS`) and subjects (`t1a2b3c4d.vp.job.>`) never meet another
 * test's, and cleanup() deletes exactly those streams.
 */
import { randomBytes } from "node:crypto";
import { connectBus, ensureTopology, type Bus } from "@vp/bus";
import { createTopology, type Topology, type TopologyOptions } from "@vp/contracts";
import { createLogger, type Logger } from "@vp/telemetry";

export const DEFAULT_TEST_NATS_URL = "nats://127.0.0.1:4222";

export function testNatsUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.NATS_URL || DEFAULT_TEST_NATS_URL;
}

export interface TestBus {
  bus: Bus;
  topology: Topology;
  natsUrl: string;
  logger: Logger;
  /** Deletes this namespace's streams (and with them their consumers), then drains the connection. */
  cleanup(): Promise<void>;
}

export interface TestBusOptions extends TopologyOptions {
  /** Create the topology's streams and consumers (default true). */
  ensure?: boolean;
  logger?: Logger;
}

export async function createTestBus(options: TestBusOptions = {}): Promise<TestBus> {
  const { ensure = true, logger: givenLogger, ...topologyOptions } = options;
  const natsUrl = testNatsUrl();
  const namespace = topologyOptions.namespace ?? `t${randomBytes(4).toString("hex")}`;
  const topology = createTopology({ ...topologyOptions, namespace });
  const logger = givenLogger ?? createLogger({ service: "test", level: process.env.LOG_LEVEL ?? "warn" });
  let bus: Bus;
  try {
    bus = await connectBus({ servers: natsUrl, name: `test-${namespace}`, logger });
  } catch (err) {
    const hostPort = natsUrl.replace(/^nats:\/\//, "");
    throw new Error(
      `NATS with JetStream is not reachable at ${hostPort}: start it with ` +
        "`start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server`" +
        ` (${err instanceof Error ? err.message : String(err)})`,
      { cause: err },
    );
  }
  if (ensure) await ensureTopology(bus, topology);
  return {
    bus,
    topology,
    natsUrl,
    logger,
    cleanup: async () => {
      try {
        for await (const name of bus.jsm.streams.names()) {
          if (name.startsWith(`${namespace}_`)) await bus.jsm.streams.delete(name).catch(() => {});
        }
      } finally {
        await bus.close();
      }
    },
  };
}
