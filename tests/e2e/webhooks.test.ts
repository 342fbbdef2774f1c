/**
 * Webhooks end to end: the services as processes, a pipeline run through HTTP, and a real receiver on 127.0.0.1
 * (admitted by WEBHOOK_ALLOW_CIDRS, the explicit setting for it). A run with a text asset and a failing node reaches
 * the receiver as node.failed and run.finished, signed so the standardwebhooks package verifies them; a receiver
 * failing twice gets the event three times, the log shows each attempt, a redelivery sends it again; other internal
 * addresses stay refused. Retries are 200 ms apart here (WEBHOOK_RETRY_SCHEDULE).
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookPayload } from "@vp/contracts";
import { startTestStack, type TestStack } from "@vp/testkit";
import { client, type Client } from "./helpers";

let fixture: TestStack;
let api: Client;
const receivers: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  fixture = await startTestStack({
    prefix: "vp-e2e-webhooks-",
    jobAckWaitMs: 3000,
    services: ["state-writer", "scheduler", "executor-ffmpeg", "gateway"],
    env: {
      WEBHOOK_SECRET_KEY: randomBytes(32).toString("base64"),
      WEBHOOK_ALLOW_CIDRS: "127.0.0.1/32",
      WEBHOOK_RETRY_SCHEDULE: "200ms,200ms,200ms",
      WEBHOOK_POLL_INTERVAL_MS: "100",
    },
  });
  api = client(fixture.stack.baseUrl);
});

afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await fixture?.cleanup();
});

type Received = { body: string; headers: IncomingHttpHeaders };

/** A receiver on 127.0.0.1 answering the next status of `statuses` (then 200) to each delivery. */
async function receiver(statuses: number[] = []) {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      got.push({ body, headers: req.headers });
      const status = statuses.shift() ?? 200;
      res.writeHead(status).end(status === 200 ? "ok" : "try later");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  receivers.push({ close });
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks/vp`,
    got,
    async waitFor(count: number, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (got.length < count) {
        if (Date.now() > deadline) throw new Error(`the receiver got ${got.length} of ${count} deliveries in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return got;
    },
  };
}

/** What a receiver does: verify the signature with the endpoint's secret, then trust the payload. */
const verified = (secret: string, d: Received) =>
  WebhookPayload.parse(
    new Webhook(secret).verify(d.body, {
      "webhook-id": String(d.headers["webhook-id"]),
      "webhook-timestamp": String(d.headers["webhook-timestamp"]),
      "webhook-signature": String(d.headers["webhook-signature"]),
    }),
  );

async function pipelineWithText(title: string) {
  const { pipeline } = await api.ok("POST", "/pipelines", { title });
  await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
    id: "script",
    title: "Script",
    type: "asset",
    asset: { type: "text", content: `Hello from ${title}` },
  });
  return pipeline.id as string;
}

describe("webhooks with the real services", () => {
  it("a run with a text asset and a failing node: the receiver gets node.failed and run.finished, signed", async () => {
    const P = await pipelineWithText("Webhooks: run and failure");
    await api.ok("POST", `/pipelines/${P}/nodes`, { id: "bad", title: "Bad clip", type: "asset", asset: { type: "video" } });
    await api.ok("PUT", `/pipelines/${P}/nodes/bad/asset`, new TextEncoder().encode("definitely not a video"), { "content-type": "video/mp4" });
    const hook = await receiver();
    const { webhook, secret } = await api.ok("POST", `/pipelines/${P}/webhooks`, { url: hook.url, events: ["run.finished", "node.failed"] });

    const run = await api.ok("POST", `/pipelines/${P}/execute`);
    const payloads = (await hook.waitFor(2)).map((d) => verified(secret, d));
    const failed = payloads.find((p) => p.type === "node.failed");
    const finished = payloads.find((p) => p.type === "run.finished");
    expect(failed?.data).toMatchObject({ pipeline_id: P, node_id: "bad", node_type: "asset", title: "Bad clip", run_id: run.run_id });
    expect(failed?.data).toMatchObject({ error: expect.stringContaining("not a readable media file") });
    expect(finished?.data).toMatchObject({
      pipeline_id: P,
      run: { id: run.run_id, kind: "all", status: "failed", metadata: { counts: { completed: 1, failed: 1 } } },
    });
    expect(finished?.timestamp).toBe(finished?.type === "run.finished" ? finished.data.run.finished_at : undefined);

    // Each event once, and the log shows both delivered at the first attempt.
    await new Promise((r) => setTimeout(r, 500));
    expect(hook.got).toHaveLength(2);
    const { deliveries } = await api.ok("GET", `/pipelines/${P}/webhooks/${webhook.id}/deliveries`);
    expect(deliveries.map((d: any) => [d.event_type, d.status, d.attempts.map((a: any) => a.status_code)]).sort()).toEqual([
      ["node.failed", "delivered", [200]],
      ["run.finished", "delivered", [200]],
    ]);
  });

  it("a receiver answering 500 twice then 200 gets the run three times, each attempt logged; redeliver sends it once more", async () => {
    const P = await pipelineWithText("Webhooks: retries");
    const hook = await receiver([500, 500]);
    const { webhook, secret } = await api.ok("POST", `/pipelines/${P}/webhooks`, { url: hook.url, events: ["run.finished"] });
    const run = await api.ok("POST", `/pipelines/${P}/execute`);

    const got = await hook.waitFor(3);
    expect(new Set(got.map((d) => d.headers["webhook-id"])).size).toBe(1);
    for (const d of got) expect(verified(secret, d)).toMatchObject({ type: "run.finished", data: { run: { id: run.run_id, status: "completed" } } });
    const log = `/pipelines/${P}/webhooks/${webhook.id}/deliveries`;
    const delivered = async (attempts: number) => {
      for (let i = 0; i < 100; i++) {
        const [delivery] = (await api.ok("GET", log)).deliveries;
        if (delivery?.status === "delivered" && delivery.attempts.length === attempts) return delivery;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`the delivery log never showed ${attempts} attempts`);
    };
    const delivery = await delivered(3);
    expect(delivery.id).toBe(got[0]!.headers["webhook-id"]);
    expect(delivery.attempts.map((a: any) => [a.attempt, a.status_code, a.response_body])).toEqual([
      [1, 500, "try later"],
      [2, 500, "try later"],
      [3, 200, "ok"],
    ]);

    expect(await api.call("POST", `${log}/${delivery.id}/redeliver`)).toMatchObject({ status: 202, body: { delivery: { id: delivery.id } } });
    await hook.waitFor(4);
    expect(hook.got[3]!.headers["webhook-id"]).toBe(delivery.id);
    expect(verified(secret, hook.got[3]!)).toMatchObject({ type: "run.finished" });
    expect((await delivered(4)).attempts[3]).toMatchObject({ attempt: 4, manual: true, status_code: 200 });
  });

  it("internal addresses outside WEBHOOK_ALLOW_CIDRS are refused with the reason", async () => {
    const P = await pipelineWithText("Webhooks: refused");
    for (const [url, reason] of [
      ["http://10.0.0.1/hook", "10.0.0.1 is a private address"],
      ["http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"],
      ["http://[::1]:8080/hook", "::1 is a loopback address"],
      ["http://127.0.0.2:8080/hook", "127.0.0.2 is a loopback address"],
    ]) {
      expect(await api.call("POST", `/pipelines/${P}/webhooks`, { url, events: ["run.finished"] }), url).toMatchObject({
        status: 422,
        body: { error: expect.stringContaining(`url: ${reason}`) },
      });
    }
    expect((await api.ok("GET", `/pipelines/${P}/webhooks`)).webhooks).toEqual([]);
  });
});
