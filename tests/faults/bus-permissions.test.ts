/**
 * The bus's users: nats-server 2.9 runs with the authorization generated from @vp/bus busPermissions() (the
 * harness's server), every service connects as its own user, and
 * - the five services run a pipeline end to end (single execute, a run, a cancel, SSE) without one publish or
 *   subscribe the server refuses;
 * - each user is refused everything outside its part: the gateway cannot publish jobs, state facts or events;
 *   an executor cannot publish commands or jobs, pull another executor's jobs or manage streams; only the
 *   state-writer publishes committed events; nobody else reads the replies meant for another service;
 * - a client without credentials, or with a wrong password, is refused at connect.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { errors as natsErrors } from "@nats-io/nats-core";
import { BUS_SERVICES, BusPermissionError, busInboxPrefix, busPermissions, connectBus, publish, request, type BusService } from "@vp/bus";
import type { JobMessage } from "@vp/contracts";
import { makeTestClip } from "@vp/media";
import { openSse } from "@vp/testkit";
import { createLogger } from "@vp/telemetry";
import { startFaultInfra, type FaultInfra, type FaultStack } from "./harness";

let infra: FaultInfra;
let fx: FaultStack;
const open: NatsConnection[] = [];

beforeAll(async () => {
  infra = await startFaultInfra("faults-perms");
  fx = await infra.stack({ jobAckWaitMs: 5000 });
});

afterAll(async () => {
  for (const nc of open) await nc.close().catch(() => undefined);
  await infra?.destroy();
});

/** A raw connection as the service's user, with the service's reply inbox. */
async function as(service: BusService): Promise<NatsConnection> {
  const nc = await connect({ servers: infra.nats.url, ...fx.credentials[service], inboxPrefix: busInboxPrefix(service, fx.topology) });
  open.push(nc);
  return nc;
}

const isDenial = (err: unknown) =>
  err instanceof natsErrors.PermissionViolationError || (err instanceof Error && err.cause instanceof natsErrors.PermissionViolationError);

/** "denied" when the server refuses the publish; "allowed" when it passed it on (an answer, no responders or silence). */
async function publishing(nc: NatsConnection, subject: string): Promise<"denied" | "allowed"> {
  try {
    await nc.request(subject, new TextEncoder().encode("{}"), { timeout: 1_000 });
    return "allowed";
  } catch (err) {
    return isDenial(err) ? "denied" : "allowed";
  }
}

/** "denied" when the server refuses the subscription within a second. */
async function subscribing(nc: NatsConnection, subject: string): Promise<"denied" | "allowed"> {
  const outcome = new Promise<"denied" | "allowed">((resolve) => {
    const sub = nc.subscribe(subject, {
      callback: (err) => {
        if (err) resolve(isDenial(err) ? "denied" : "allowed");
      },
    });
    void nc.flush().then(() => setTimeout(() => (sub.unsubscribe(), resolve("allowed")), 1_000));
  });
  return outcome;
}

describe("the bus's users and permissions", () => {
  it("the five services, each as its own user, run a pipeline end to end (execute, run, cancel, SSE) and the server refuses none of their publishes or subscriptions", async () => {
    const { api, stack } = fx;
    const clipPath = join(infra.dir, "clip.mp4");
    await makeTestClip({ path: clipPath, durationSeconds: 1, width: 64, height: 48, fps: 10, audio: false });
    const clip = new Uint8Array(await readFile(clipPath));
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "users and permissions" });
    const P = pipeline.id as string;
    const sse = openSse(`${api.root}/pipelines/${P}/events`, { bearer: await stack.token() });
    await sse.opened;
    for (const id of ["a", "b"]) {
      await api.ok("POST", `/pipelines/${P}/nodes`, { id, title: id, type: "asset", asset: { type: "video" } });
      await api.ok("PUT", `/pipelines/${P}/nodes/${id}/asset`, clip, { "content-type": "video/mp4" });
    }
    await api.ok("POST", `/pipelines/${P}/nodes`, { id: "merge", title: "merge", type: "merge-videos", inputs: { segments: ["a", "b"] } });
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "say",
      title: "say",
      type: "generate-voiceover",
      config: { provider: "local", script: "Hello.", voiceId: "en-gb" },
    });
    // A single node (vp.cmd.execute), then the whole pipeline as a run (vp.cmd.run): executor-ffmpeg and executor-ai.
    expect(await api.ok("POST", `/pipelines/${P}/nodes/a/execute`)).toMatchObject({ status: "queued" });
    await api.waitForStatus(P, "a", ["completed"]);
    const run = await api.ok("POST", `/pipelines/${P}/execute`, {});
    expect(run.run_id).toEqual(expect.any(String));
    for (const id of ["a", "b", "merge", "say"]) {
      const node = await api.waitForStatus(P, id, ["completed", "failed"], 90_000);
      expect(node.status, `${id}: ${JSON.stringify(node.metadata)}`).toBe("completed");
    }
    // vp.cmd.cancel and the scheduler's verdict on the gateway's inbox (nothing is left running to cancel).
    const cancel = await api.call("POST", `/pipelines/${P}/cancel`);
    expect(cancel.status, JSON.stringify(cancel.body)).toBeLessThan(300);
    // SSE: the gateway's ordered consumer on VP_EVENTS delivered the state-writer's committed events.
    await sse.waitFor((events) =>
      ["a", "b", "merge", "say"].every((id) =>
        events.some(
          (e) => e.event === "node" && (e.data as { nodeId?: string; status?: string }).nodeId === id && (e.data as { status?: string }).status === "completed",
        ),
      ),
    );
    await sse.close();

    expect(fx.permissionDenials()).toEqual([]);
    for (const name of BUS_SERVICES) {
      expect(
        fx.logsOf(name).filter((l) => String(l.msg).startsWith("NATS without credentials")),
        name,
      ).toEqual([]);
      expect(
        fx.logsOf(name).some((l) => typeof l.msg === "string" && /ready|listening/.test(l.msg)),
        `${name} started`,
      ).toBe(true);
    }
  });

  it("each service is refused every publish outside its part of the bus", async () => {
    const { subjects, streams } = fx.topology;
    const ns = fx.topology.namespace;
    const jobs = streams.jobs.name;
    const events = streams.events.name;
    const everywhere = [
      `$JS.API.STREAM.DELETE.${jobs}`,
      `$JS.API.STREAM.PURGE.${events}`,
      `$JS.API.STREAM.DELETE.${events}`,
      `$JS.API.STREAM.MSG.DELETE.${events}`,
      // A purge would also make nats-server 2.9 forget the messages being worked on (packages/bus/src/stranded.ts).
      `$JS.API.STREAM.PURGE.${jobs}`,
      `$JS.API.STREAM.PURGE.${streams.commands.name}`,
    ];
    const refused: Record<BusService, string[]> = {
      gateway: [
        subjects.job("merge-videos"),
        subjects.job("talking-head"),
        subjects.state("p1", "n1"),
        subjects.events("p1"),
        subjects.transition,
        subjects.runRecord,
        subjects.interrupt,
        `$JS.API.STREAM.CREATE.${streams.commands.name}`,
        `$JS.API.STREAM.UPDATE.${events}`,
        // Another service's durable consumer on the stream the gateway reads: never pulled, replaced or deleted.
        `$JS.API.CONSUMER.MSG.NEXT.${events}.scheduler-events`,
        `$JS.API.CONSUMER.DELETE.${events}.scheduler-events`,
        `$JS.API.CONSUMER.CREATE.${events}.scheduler-events.${ns}.vp.events.>`,
        `$JS.API.CONSUMER.MSG.NEXT.${jobs}.executor-talking-head`,
        `_INBOX.${ns}.scheduler.x`,
      ],
      // It creates every job consumer (and resets one by deleting it, packages/bus/src/stranded.ts), but never pulls
      // from or acknowledges on one; no work-queue message is its to delete.
      scheduler: [
        subjects.execute,
        subjects.run,
        subjects.cancel,
        subjects.events("p1"),
        `$JS.API.CONSUMER.MSG.NEXT.${jobs}.executor-merge-videos`,
        `$JS.ACK.${jobs}.executor-merge-videos.1.1.1.1.0`,
        `$JS.API.CONSUMER.DELETE.${events}.scheduler-events`,
        `_INBOX.${ns}.executor-ai.x`,
      ],
      // It answers on the inboxes of the services that send it requests: not the gateway's.
      "state-writer": [
        subjects.execute,
        subjects.job("asset"),
        subjects.interrupt,
        subjects.transition,
        `$JS.API.STREAM.CREATE.${events}`,
        `$JS.API.CONSUMER.MSG.NEXT.${jobs}.executor-asset`,
        `_INBOX.${ns}.gateway.x`,
      ],
      "executor-ffmpeg": [
        subjects.execute,
        subjects.run,
        subjects.cancel,
        subjects.job("merge-videos"),
        subjects.events("p1"),
        subjects.interrupt,
        subjects.runRecord,
        `$JS.API.STREAM.CREATE.${jobs}`,
        `$JS.API.STREAM.UPDATE.${jobs}`,
        `$JS.API.STREAM.MSG.GET.${events}`,
        `$JS.API.CONSUMER.CREATE.${events}.spy.${ns}.vp.events.>`,
        // The paid types are executor-ai's: executor-ffmpeg may neither pull nor redefine their consumers.
        `$JS.API.CONSUMER.MSG.NEXT.${jobs}.executor-talking-head`,
        `$JS.API.CONSUMER.CREATE.${jobs}.executor-talking-head.${subjects.job("talking-head")}`,
        `$JS.ACK.${jobs}.executor-talking-head.1.1.1.1.0`,
        `_INBOX.${ns}.gateway.x`,
      ],
      "executor-ai": [
        subjects.execute,
        subjects.run,
        subjects.job("talking-head"),
        subjects.events("p1"),
        `$JS.API.STREAM.CREATE.${jobs}`,
        `$JS.API.CONSUMER.MSG.NEXT.${jobs}.executor-merge-videos`,
        `$JS.API.CONSUMER.MSG.NEXT.${streams.commands.name}.scheduler`,
        `_INBOX.${ns}.gateway.x`,
      ],
    };
    const wrong: string[] = [];
    // No service deletes single work-queue messages; only the scheduler deletes (resets) a work-queue consumer.
    for (const service of BUS_SERVICES) {
      refused[service].push(`$JS.API.STREAM.MSG.DELETE.${jobs}`, `$JS.API.STREAM.MSG.DELETE.${streams.commands.name}`);
      if (service !== "scheduler")
        refused[service].push(`$JS.API.CONSUMER.DELETE.${jobs}.executor-talking-head`, `$JS.API.CONSUMER.DELETE.${streams.commands.name}.scheduler`);
    }
    for (const service of BUS_SERVICES) {
      const nc = await as(service);
      for (const subject of [...refused[service], ...everywhere])
        if ((await publishing(nc, subject)) !== "denied") wrong.push(`${service} may publish ${subject}`);
      // What it needs is not refused (the check above tells the two apart): account info and stream info.
      for (const subject of ["$JS.API.INFO", `$JS.API.STREAM.INFO.${jobs}`])
        if ((await publishing(nc, subject)) !== "allowed") wrong.push(`${service} may not publish ${subject}`);
    }
    // Only the state-writer publishes committed events.
    for (const service of BUS_SERVICES) {
      const outcome = await publishing(await as(service), subjects.events("p1"));
      if (outcome !== (service === "state-writer" ? "allowed" : "denied")) wrong.push(`${service}: events publish ${outcome}`);
    }
    // The state-writer answers its requesters on their inboxes whether or not it received the request on this
    // connection (an answer after a reconnect): a static permission, not allow_responses.
    const stateWriter = await as("state-writer");
    for (const requester of ["scheduler", "executor-ffmpeg", "executor-ai"] as const) {
      if ((await publishing(stateWriter, `${busInboxPrefix(requester, fx.topology)}.x`)) !== "allowed") wrong.push(`state-writer may not answer ${requester}`);
    }
    const gateway = await as("gateway");
    if ((await publishing(gateway, `$JS.API.CONSUMER.INFO.${events}.sse`)) !== "allowed") wrong.push("gateway may not read its SSE consumers' info");
    const scheduler = await as("scheduler");
    for (const type of ["talking-head", "merge-videos"] as const) {
      const subject = `$JS.API.CONSUMER.CREATE.${jobs}.executor-${type}.${subjects.job(type)}`;
      if ((await publishing(scheduler, subject)) !== "allowed") wrong.push(`scheduler may not create the ${type} job consumer`);
    }
    for (const subject of [
      `$JS.API.STREAM.MSG.GET.${jobs}`,
      `$JS.API.CONSUMER.INFO.${streams.state.name}.${fx.topology.consumers.stateWriter.durable}`,
      `$JS.API.CONSUMER.DELETE.${jobs}.executor-talking-head`,
      `$JS.API.CONSUMER.DELETE.${streams.commands.name}.scheduler`,
      `$JS.API.CONSUMER.DELETE.${streams.state.name}.${fx.topology.consumers.stateWriter.durable}`,
    ]) {
      if ((await publishing(scheduler, subject)) !== "allowed") wrong.push(`scheduler may not publish ${subject}`);
    }
    expect(wrong).toEqual([]);
  });

  it("each service is refused subscriptions to commands, jobs, facts, events, requests and other services' replies", async () => {
    const { subjects } = fx.topology;
    const ns = fx.topology.namespace;
    const wrong: string[] = [];
    for (const service of BUS_SERVICES) {
      const nc = await as(service);
      const refused = [">", `${ns}.vp.cmd.>`, `${ns}.vp.job.>`, `${ns}.vp.state.>`, `${ns}.vp.events.>`, "_INBOX.>", `_INBOX.${ns}.>`];
      // Transition requests: only the state-writer answers them (anyone else could forge a claim's answer).
      if (service !== "state-writer") refused.push(subjects.transition, subjects.runRecord);
      for (const other of BUS_SERVICES.filter((s) => s !== service)) refused.push(`${busInboxPrefix(other, fx.topology)}.>`);
      for (const subject of refused) if ((await subscribing(nc, subject)) !== "denied") wrong.push(`${service} may subscribe ${subject}`);
      if ((await subscribing(nc, `${busInboxPrefix(service, fx.topology)}.probe`)) !== "allowed") wrong.push(`${service} may not subscribe its own inbox`);
    }
    expect(wrong).toEqual([]);
  });

  it("a client without credentials, or with a wrong password, is refused at connect", async () => {
    const logger = createLogger({ service: "faults", level: "silent" });
    await expect(connect({ servers: infra.nats.url, reconnect: false })).rejects.toBeInstanceOf(natsErrors.AuthorizationError);
    await expect(connect({ servers: infra.nats.url, user: fx.credentials.gateway.user, pass: "wrong", reconnect: false })).rejects.toBeInstanceOf(
      natsErrors.AuthorizationError,
    );
    await expect(connectBus({ servers: infra.nats.url, name: "anonymous", logger })).rejects.toThrow(/refused a connection without credentials/);
    await expect(connectBus({ servers: infra.nats.url, name: "wrong", logger, user: fx.credentials.scheduler.user, pass: "wrong" })).rejects.toThrow(
      `refused the credentials of user ${fx.credentials.scheduler.user}`,
    );
  });

  it("a publish or request outside the user's permissions fails at once with BusPermissionError naming the subject, not at its timeout", async () => {
    const logger = createLogger({ service: "faults", level: "silent" });
    const bus = await connectBus({
      servers: infra.nats.url,
      name: "gateway-probe",
      logger,
      ...fx.credentials.gateway,
      inboxPrefix: busInboxPrefix("gateway", fx.topology),
    });
    try {
      const job: JobMessage = { v: 1, jobId: "j1", pipelineId: "p1", nodeId: "n1", type: "talking-head", dispatchedAt: new Date().toISOString() };
      const started = performance.now();
      const published = publish(bus, fx.topology.messages.job("talking-head"), job, { msgId: "j1", timeoutMs: 20_000 });
      await expect(published).rejects.toBeInstanceOf(BusPermissionError);
      await expect(published).rejects.toThrow(`publish to ${fx.topology.subjects.job("talking-head")}: denied by NATS`);
      const claim = { v: 1, kind: "claim-running", pipelineId: "p1", nodeId: "n1", jobId: "j1", attempt: 1, claimId: "c1" } as const;
      await expect(request(bus, fx.topology.messages.transition, claim, { timeoutMs: 20_000 })).rejects.toBeInstanceOf(BusPermissionError);
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      await bus.close();
    }
  });

  it("a rotated password: the service still holding the old one exits when the server refuses it, and starts again with the new one", async () => {
    const { stack, topology } = fx;
    const before = fx.processesOf("executor-ai").at(-1)!;
    const rotated = randomBytes(16).toString("hex");
    // What an operator does: the new password in the server's config (reload), the server restarted.
    await infra.nats.setUsers(
      BUS_SERVICES.map((service) => ({
        user: fx.credentials[service].user,
        password: { literal: service === "executor-ai" ? rotated : fx.credentials[service].pass },
        permissions: busPermissions(service, topology),
      })),
    );
    await infra.nats.restart();
    expect(await before.exited).toEqual({ code: 1, signal: null });
    expect(before.logs.find((l) => l.msg === "NATS connection lost for good; exiting so the process restarts with its current credentials")).toMatchObject({
      level: 60,
    });
    // The restarted process reads the new Secret.
    const after = await fx.replica("executor-ai", { NATS_PASSWORD: rotated });
    expect(after.logs.some((l) => l.msg === "executor-ai ready")).toBe(true);
    // The others kept their passwords and reconnected.
    for (const name of ["gateway", "scheduler", "state-writer", "executor-ffmpeg"] as const) expect(stack.services.get(name)!.proc.exitCode, name).toBeNull();
    expect(fx.permissionDenials()).toEqual([]);
  });
});
