/**
 * Stream replicas come from configuration and survive every topology update, proven on a real 3-server
 * nats-server cluster started here (JetStream clustering: server_name, cluster routes, a store per server).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTopology } from "@vp/contracts";
import { connectBus, type Bus } from "./connect";
import { ensureTopology } from "./topology";
import { testLogger, waitFor } from "./test-helpers";

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

let dir: string;
let servers: Array<{ name: string; client: number; proc: ChildProcess }> = [];
let bus: Bus;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-nats-cluster-"));
  const ports = await Promise.all(Array.from({ length: 6 }, freePort));
  const routes = [1, 3, 5].map((i) => `nats-route://127.0.0.1:${ports[i]}`);
  servers = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const name = `vp-r${i}`;
      const conf = join(dir, `${name}.conf`);
      await writeFile(
        conf,
        [
          `server_name: ${name}`,
          `listen: 127.0.0.1:${ports[i * 2]}`,
          `jetstream { store_dir: "${join(dir, name)}" }`,
          `cluster { name: vp-test, listen: 127.0.0.1:${ports[i * 2 + 1]}, routes: [${routes.join(", ")}] }`,
        ].join("\n"),
      );
      const proc = spawn(NATS_SERVER, ["-c", conf], { stdio: "ignore" });
      return { name, client: ports[i * 2]!, proc };
    }),
  );
  // The cluster takes a few seconds to elect its JetStream meta leader; until then connectBus finds no JetStream.
  bus = await waitFor(
    () => connectBus({ servers: servers.map((s) => `nats://127.0.0.1:${s.client}`), name: "replicas-test", logger: testLogger() }).catch(() => undefined),
    45_000,
    "JetStream on the 3-server cluster",
  );
  // Two servers already elect a leader; a 3-replica stream needs the third to have joined (slow on a loaded machine).
  await waitFor(
    async () => {
      const placed = await bus.jsm.streams.add({ name: "R3_PROBE", subjects: ["r3probe.>"], num_replicas: 3 }).then(
        () => true,
        () => false,
      );
      if (placed) await bus.jsm.streams.delete("R3_PROBE");
      return placed || undefined;
    },
    45_000,
    "all three servers in the JetStream cluster",
  );
}, 120_000);

afterAll(async () => {
  await bus?.close().catch(() => undefined);
  for (const s of servers) s.proc.kill("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

describe("stream replicas from configuration, on a 3-server cluster", () => {
  it("creates every stream with the configured replicas, keeps them through an update of another setting, and a stream survives the loss of a server", async () => {
    const topology = createTopology({ namespace: "r3", streamReplicas: 3 });
    await ensureTopology(bus, topology, { consumers: [] });
    for (const stream of topology.allStreams()) {
      const info = await bus.jsm.streams.info(stream.name);
      expect(info.config.num_replicas, stream.name).toBe(3);
      await waitFor(async () => ((await bus.jsm.streams.info(stream.name)).cluster?.replicas?.length ?? 0) === 2, 20_000, `${stream.name} on 3 servers`);
    }

    // A release that changes another stream setting keeps the replica count (it used to write 1 back).
    const changed = createTopology({ namespace: "r3", streamReplicas: 3 });
    changed.streams.events.maxAgeSeconds = 12 * 3600;
    await ensureTopology(bus, changed, { consumers: [] });
    const events = await bus.jsm.streams.info(changed.streams.events.name);
    expect(events.config.num_replicas).toBe(3);
    expect(events.config.max_age).toBe(12 * 3600 * 1e9);

    // A hand-made change of the replica count is put back to the configured value by the next start.
    const { name: _n, ...config } = (await bus.jsm.streams.info(topology.streams.jobs.name)).config;
    await bus.jsm.streams.update(topology.streams.jobs.name, { ...config, num_replicas: 1 });
    expect((await bus.jsm.streams.info(topology.streams.jobs.name)).config.num_replicas).toBe(1);
    await ensureTopology(bus, topology, { consumers: [] });
    expect((await bus.jsm.streams.info(topology.streams.jobs.name)).config.num_replicas).toBe(3);

    // Losing the server that leads a stream: the stream elects another leader and keeps taking messages.
    const leader = (await bus.jsm.streams.info(topology.streams.commands.name)).cluster?.leader;
    const victim = servers.find((s) => s.name === leader)!;
    expect(victim, `leader ${leader}`).toBeDefined();
    victim.proc.kill("SIGKILL");
    const ack = await waitFor(
      async () => bus.js.publish(topology.subjects.execute, new TextEncoder().encode("{}"), { timeout: 2000 }).catch(() => undefined),
      30_000,
      "a publish to VP_COMMANDS after its leader died",
    );
    expect(ack.stream).toBe(topology.streams.commands.name);
    const after = await bus.jsm.streams.info(topology.streams.commands.name);
    expect(after.cluster?.leader).not.toBe(leader);
    expect(after.state.messages).toBe(1);
  }, 120_000);
});
