/**
 * Resilience against a nats-server restart. Uses a private nats-server (own port and store directory) so
 * restarting it never disturbs the machine's shared server or other tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTopology, JobMessage, NodeChanged } from "@vp/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type Bus } from "./connect";
import { consume } from "./consume";
import { publish } from "./publish";
import { replayEvents } from "./replay";
import { ensureTopology } from "./topology";
import { delay, job, testLogger, waitFor } from "./test-helpers";

const NATS_SERVER = "/usr/sbin/nats-server";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function startServer(port: number, dir: string): ChildProcess {
  return spawn(NATS_SERVER, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: "ignore" });
}

async function stopServer(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  await exited;
}

describe("surviving a nats-server restart", () => {
  let port: number;
  let dir: string;
  let server: ChildProcess;
  let bus: Bus;
  const topology = createTopology({ namespace: "restart", jobAckWaitMs: 1_500 });

  beforeAll(async () => {
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), "vp-nats-"));
    server = startServer(port, dir);
    bus = await waitFor(
      () => connectBus({ servers: `nats://127.0.0.1:${port}`, name: "restart-test", logger: testLogger() }).catch(() => undefined),
      10_000,
      "private nats-server",
    );
    await ensureTopology(bus, topology);
  });
  afterAll(async () => {
    await bus?.close();
    if (server) await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it("consume() and replayEvents() resume after the server comes back, without gaps or repeats", async () => {
    const handled: string[] = [];
    const consumer = consume({
      bus,
      consumer: topology.consumers.job("merge-videos"),
      schema: JobMessage,
      logger: testLogger(),
      handler: async (p) => void handled.push(p.jobId),
      pullExpiresMs: 2_000,
    });
    const events: string[] = [];
    const replay = replayEvents(bus, {
      stream: topology.streams.events.name,
      subject: topology.subjects.events("p1"),
      startSeq: 1,
      schema: NodeChanged,
      onEvent: (_seq, e) => void events.push(e.eventId),
    });
    const event = (n: number, pipelineId = "p1"): NodeChanged => ({
      v: 1,
      kind: "node",
      eventId: `${pipelineId}-e${n}`,
      pipelineId,
      nodeId: "n1",
      type: "merge-videos",
      status: "queued",
      stateVersion: n,
      metadata: null,
      output: null,
      pipelineMetadata: {},
      at: new Date().toISOString(),
    });
    const sendJob = (m: JobMessage) => publish(bus, topology.messages.job("merge-videos"), m, { msgId: m.jobId, timeoutMs: 1_000 });
    const sendEvent = (e: NodeChanged) => publish(bus, topology.messages.events(e.pipelineId), e, { msgId: e.eventId, timeoutMs: 1_000 });

    try {
      const a = job();
      await sendJob(a);
      await sendEvent(event(1));
      await waitFor(() => handled.length === 1 && events.length === 1, 5_000);

      await stopServer(server);
      await delay(500);
      server = startServer(port, dir);

      const b = job();
      await waitFor(
        () =>
          sendJob(b).then(
            () => true,
            () => false,
          ),
        15_000,
        "publish after restart",
      );
      // The library's ordered consumer is recreated after the restart; it must keep its filter subject.
      await waitFor(
        () =>
          sendEvent(event(1, "p2")).then(
            () => true,
            () => false,
          ),
        15_000,
        "event after restart",
      );
      await sendEvent(event(2));
      await waitFor(() => handled.length === 2 && events.length === 2, 20_000, "consumers to resume");
      expect(handled).toEqual([a.jobId, b.jobId]);
      expect(events).toEqual(["p1-e1", "p1-e2"]);
      await delay(300);
      expect(events).toEqual(["p1-e1", "p1-e2"]);
    } finally {
      await consumer.stop();
      await replay.stop();
    }
  });
});
