/**
 * The common machinery of the fake AI providers: a real HTTP server on 127.0.0.1 (node:http), a job table with
 * the status life cycle every async provider has, counters a test asserts on (create calls, jobs in flight),
 * and scripted faults (429 + Retry-After, 500, a hang, a 4xx with the provider's own message).
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type FakeEndpoint = "create" | "status" | "download" | "lookup" | "cancel";

export type Fault =
  /** 429 Too Many Requests with `Retry-After: <seconds>` (omitted when undefined); `body` replaces the error body. */
  | { kind: "429"; retryAfterSeconds?: number; body?: unknown }
  /** 500 with a provider-shaped error body. Nothing is created. */
  | { kind: "500" }
  /** The request is taken (a create creates its job) but never answered: the client's timeout must fire. */
  | { kind: "hang" }
  /** A 4xx (default 400) with the provider's own message, e.g. a content-policy refusal. Nothing is created. */
  | { kind: "reject"; status?: number; message: string; code?: string };

export interface FakeCall {
  endpoint: FakeEndpoint;
  method: string;
  path: string;
  at: number;
  status: number | "hang";
}

export interface FakeJob {
  id: string;
  createdAt: number;
  polls: number;
  /** Set by failNextJob(): the job fails with this reason when it would have completed. */
  failReason?: string;
  cancelled: boolean;
  downloaded: boolean;
  /** What the client asked for (parsed request body). */
  request: Record<string, unknown>;
  /** Extra fields a fake keeps per job (title, model, ...). */
  extra: Record<string, unknown>;
}

export interface FakeOptions {
  /** The API key the fake accepts. */
  apiKey: string;
  /** Status calls a job answers "running" before it is done (default 2). */
  pollsUntilDone?: number;
}

export type Route = (req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) => Promise<void> | void;

/**
 * One fake provider. Subclasses register their documented endpoints with `route`; the base counts calls,
 * applies faults queued for the endpoint, tracks jobs, and serves the media files they return.
 */
export abstract class FakeProvider {
  /** Every call, in order (faulted ones included). */
  readonly calls: FakeCall[] = [];
  readonly jobs = new Map<string, FakeJob>();
  /** Jobs created and not yet downloaded (for video providers) or requests being answered (ElevenLabs). */
  inFlight = 0;
  maxInFlight = 0;
  /** Requests that sent the API key to a URL that must not receive it (a CDN / signed download URL). */
  keyLeaks = 0;
  /** While true, jobs stay running however often they are polled. */
  held = false;
  pollsUntilDone: number;
  readonly apiKey: string;
  protected dir = "";
  private server: Server | undefined;
  private readonly routes: Array<{ method: string; pattern: RegExp; endpoint: FakeEndpoint | undefined; handler: Route }> = [];
  private readonly faults = new Map<FakeEndpoint, Fault[]>();
  private failReasons: string[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly hung = new Set<ServerResponse>();
  url = "";

  constructor(options: FakeOptions) {
    this.apiKey = options.apiKey;
    this.pollsUntilDone = options.pollsUntilDone ?? 2;
  }

  /** Create calls that created a job (faulted creates that created nothing are not counted). */
  get creates(): number {
    return this.jobs.size;
  }

  /** Times of every create request, answered or not (for Retry-After spacing). */
  get createTimes(): number[] {
    return this.calls.filter((c) => c.endpoint === "create").map((c) => c.at);
  }

  /** Queues faults for the next calls of `endpoint`, in order. */
  fail(endpoint: FakeEndpoint, ...faults: Fault[]): this {
    this.faults.set(endpoint, [...(this.faults.get(endpoint) ?? []), ...faults]);
    return this;
  }

  /** The next created job fails after polling with this reason (the provider's render error). */
  failNextJob(reason: string): this {
    this.failReasons.push(reason);
    return this;
  }

  hold(): this {
    this.held = true;
    return this;
  }

  release(): this {
    this.held = false;
    return this;
  }

  /** Clears faults, jobs and counters between tests. */
  reset(): void {
    this.calls.length = 0;
    this.jobs.clear();
    this.faults.clear();
    this.failReasons = [];
    this.inFlight = 0;
    this.maxInFlight = 0;
    this.keyLeaks = 0;
    this.held = false;
  }

  /** Resolves once `predicate` holds (checked after every call), or rejects after timeoutMs. */
  waitFor(predicate: () => boolean, timeoutMs = 30_000, what = "condition"): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `${this.constructor.name}: ${what} not reached within ${timeoutMs} ms; calls: ${JSON.stringify(this.calls.map((c) => [c.endpoint, c.status]))}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  async start(): Promise<this> {
    this.dir = await mkdtemp(join(tmpdir(), `vp-fake-${this.constructor.name.toLowerCase()}-`));
    await this.prepare();
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.hung.clear();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  /** Generates the media the fake returns (real files made with ffmpeg/espeak-ng). */
  protected abstract prepare(): Promise<void>;
  /** The provider's error body for a message. */
  protected abstract errorBody(status: number, message: string, code?: string): unknown;
  /** Whether the request carries the fake's key the way the provider expects it. */
  protected abstract authorized(req: IncomingMessage, url: URL): boolean;

  protected route(method: string, pattern: RegExp, endpoint: FakeEndpoint | undefined, handler: Route): void {
    this.routes.push({ method, pattern, endpoint, handler });
  }

  /** Registers a job as the provider would on an accepted create. */
  protected newJob(request: Record<string, unknown>, extra: Record<string, unknown> = {}, id: string = randomUUID()): FakeJob {
    const job: FakeJob = { id, createdAt: Date.now(), polls: 0, cancelled: false, downloaded: false, request, extra, failReason: this.failReasons.shift() };
    this.jobs.set(id, job);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return job;
  }

  /** Advances a job by one status call: "running" until pollsUntilDone, then "done" or "failed". */
  protected advance(job: FakeJob): "running" | "done" | "failed" | "cancelled" {
    if (job.cancelled) return "cancelled";
    job.polls += 1;
    if (this.held || job.polls <= this.pollsUntilDone) return "running";
    return job.failReason ? "failed" : "done";
  }

  /** Serves a media file of this fake and marks the job's result as fetched. */
  protected async sendFile(res: ServerResponse, file: string, contentType: string, job?: FakeJob, headers: Record<string, string> = {}): Promise<void> {
    const bytes = await readFile(file);
    if (job && !job.downloaded) {
      job.downloaded = true;
      this.inFlight -= 1;
    }
    res.writeHead(200, { "content-type": contentType, "content-length": bytes.length, ...headers });
    res.end(bytes);
  }

  protected json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  protected error(res: ServerResponse, status: number, message: string, code?: string, headers: Record<string, string> = {}): void {
    this.json(res, status, this.errorBody(status, message, code), headers);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const match = this.routes.find((r) => r.method === req.method && r.pattern.test(url.pathname));
    const call: FakeCall = { endpoint: match?.endpoint ?? "download", method: req.method ?? "", path: url.pathname, at: Date.now(), status: 0 };
    const finish = (status: number | "hang") => {
      call.status = status;
      this.calls.push(call);
      for (const w of [...this.waiters]) w();
    };
    try {
      if (!match) {
        this.error(res, 404, `no route for ${req.method} ${url.pathname}`);
        return finish(404);
      }
      if (match.endpoint && !this.authorized(req, url)) {
        this.error(res, 401, "Invalid API key", "unauthorized");
        return finish(401);
      }
      const fault = match.endpoint ? this.faults.get(match.endpoint)?.shift() : undefined;
      if (fault?.kind === "429") {
        const headers: Record<string, string> = fault.retryAfterSeconds !== undefined ? { "retry-after": String(fault.retryAfterSeconds) } : {};
        if (fault.body !== undefined) this.json(res, 429, fault.body, headers);
        else this.error(res, 429, "Too many requests", "rate_limit_exceeded", headers);
        return finish(429);
      }
      if (fault?.kind === "500") {
        this.error(res, 500, "Internal server error", "internal_error");
        return finish(500);
      }
      if (fault?.kind === "reject") {
        this.error(res, fault.status ?? 400, fault.message, fault.code);
        return finish(fault.status ?? 400);
      }
      if (fault?.kind === "hang") {
        // The work happens (a create creates its job), only the answer never comes.
        const sink = new Proxy(res, {
          get: (target, prop) => (prop === "writeHead" || prop === "end" || prop === "write" ? () => target : Reflect.get(target, prop)),
        });
        this.hung.add(res);
        await match.handler(req, sink as ServerResponse, url, body);
        return finish("hang");
      }
      await match.handler(req, res, url, body);
      finish(res.statusCode);
    } catch (error) {
      const status = (error as { status?: number }).status ?? 500;
      if (!res.headersSent) this.error(res, status, (error as Error).message);
      finish(status);
    }
  }
}

/** Parses a JSON request body, or throws a 400-worthy error. */
export function jsonBody(body: Buffer): Record<string, unknown> {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as unknown;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw Object.assign(new Error("request body is not a JSON object"), { status: 400 });
}
