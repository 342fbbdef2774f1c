import type { Queryable } from "@vp/db";
import { metrics } from "@vp/telemetry";
import { rowOutput } from "../batches/records";
import type { GatewayDeps } from "../deps";
import type { SseSink } from "./sink";
import { createSseStream, RETRY_SOON } from "./stream";

const KEEP_ALIVE = Buffer.from(": keep-alive\n\n");

/**
 * How long after its updated_at a row's write is surely committed and read by a poll (updated_at is taken when the
 * row is written, its commit comes later). A poll reads again the rows changed within this window before its last
 * safe point, so a row committed late is not missed.
 */
export const SETTLE_MICROS = 2_000_000;

/** A batch row as the stream sends it. */
interface RowState {
  index: number;
  status: string;
  cost: number;
  output: { url: string; nodeId: string } | null;
  error: string | null;
}

interface RowRecord {
  index: number;
  status: string;
  cost: string | number | null;
  cost_saved: string | number | null;
  output: { nodeId?: string } | null;
  error: string | null;
  /** The row's own pipeline (its output is that pipeline's node's). */
  pipeline_id: string | null;
  /** updated_at in microseconds since the epoch, as text (a bigint). */
  us: string;
}

interface BatchRecord {
  status: string;
  /** The database's clock when it was read, in microseconds (text). */
  now: string;
}

/** The batch's rows changed after `afterMicros` (all of them for null), oldest change first. */
async function changedRows(db: Queryable, batchId: string, afterMicros: number | null): Promise<RowRecord[]> {
  const { rows } = await db.query<RowRecord>(
    `SELECT index, status, cost, cost_saved, output, error, pipeline_id,
            (extract(epoch FROM updated_at) * 1000000)::bigint::text AS us
       FROM video_production_batch_rows
      WHERE batch_id = $1 AND ($2::bigint IS NULL OR updated_at > timestamptz 'epoch' + $2::bigint * interval '1 microsecond')
      ORDER BY updated_at, index`,
    [batchId, afterMicros === null ? null : String(afterMicros)],
  );
  return rows;
}

/** The batch, and the database's clock read before its rows are (what makes a safe point). */
async function batchRecord(db: Queryable, batchId: string): Promise<BatchRecord | undefined> {
  const { rows } = await db.query<BatchRecord>(
    `SELECT status, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text AS now
       FROM video_production_batches WHERE id = $1`,
    [batchId],
  );
  return rows[0];
}

const money = (value: string | number | null) => (value === null ? 0 : Number(value));

/** The row as GET /batches/:id gives it (its output's URL included), without its values. */
function rowState(record: RowRecord): RowState {
  return { index: record.index, status: record.status, cost: money(record.cost), output: rowOutput(record), error: record.error };
}

/**
 * A `row` frame. Its id is a safe point (microseconds of the database's clock): a client that got it has every row
 * change up to that time, so one resuming with it as Last-Event-ID is sent the rows changed after it.
 */
const rowFrame = (data: string, id: number) => `event: row\ndata: ${data}\nid: ${id}\n\n`;

/**
 * Moves a quiet client's Last-Event-ID up to a safe point past the last rows it got (their frames carried an
 * earlier one), so a resume does not send them again. Sent once per quiet spell, not every second.
 */
const markFrame = (id: number) => `event: mark\ndata: {}\nid: ${id}\n\n`;

/** A row's latest state, kept by the hub: a new client's start is built from these, never a query of its own. */
interface KeptRow {
  us: number;
  status: string;
  cost: number;
  costSaved: number;
  /** The row's state as JSON (a frame's data). */
  data: string;
}

type Listener = (frames: Buffer) => void;

interface BatchHub {
  listeners: Set<Listener>;
  rows: Map<number, KeptRow>;
  /** Every row change up to this time (microseconds) has been read: the id of the frames sent now. */
  safe: number;
  /** The highest updated_at sent to clients, and the id it went out under. */
  newest: number;
  newestSentAs: number;
  countsFrame: string;
  batchFrame: string;
  status: string;
  timer: NodeJS.Timeout;
}

export interface BatchHubOptions {
  /** How often each watched batch's rows are read (default 1 s); the counts go out at most this often. */
  pollMs?: number;
}

/**
 * One poller per watched batch on this gateway, shared by every client of the batch: about once a second it reads
 * the rows whose updated_at moved, keeps each row's latest state, and hands every listener one Buffer: the rows
 * that changed (several writes of a row between two polls are one frame), then the counts if they changed, then
 * the batch's status if it changed. A client's traffic follows what changed, not the batch's size.
 */
export function createBatchHubs(deps: Pick<GatewayDeps, "reader" | "logger">, options: BatchHubOptions = {}) {
  const pollMs = options.pollMs ?? 1000;
  const hubs = new Map<string, Promise<BatchHub>>();

  /** The counts and totals over the rows, as GET /batches/:id gives them. */
  const countsOf = (hub: BatchHub) => {
    const counts = { waiting: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    let cost = 0;
    let costSaved = 0;
    for (const row of hub.rows.values()) {
      if (row.status in counts) counts[row.status as keyof typeof counts]++;
      cost += row.cost;
      costSaved += row.costSaved;
    }
    const money = (n: number) => Math.round(n * 1e6) / 1e6;
    return `event: counts\ndata: ${JSON.stringify({ ...counts, cost: money(cost), costSaved: money(costSaved) })}\n\n`;
  };
  const batchFrame = (status: string) => `event: batch\ndata: ${JSON.stringify({ status })}\n\n`;

  /** Applies rows read from the database; returns the states of those that changed for a client. */
  const apply = (hub: BatchHub, records: RowRecord[]): string[] => {
    const changed: string[] = [];
    for (const record of records) {
      const us = Number(record.us);
      const kept = hub.rows.get(record.index);
      if (kept?.us === us) continue;
      const state = rowState(record);
      const data = JSON.stringify(state);
      hub.rows.set(record.index, { us, status: state.status, cost: state.cost, costSaved: money(record.cost_saved), data });
      // Written again with nothing a client sees changed (a driver touching it): nothing to send.
      if (kept?.data === data) continue;
      hub.newest = Math.max(hub.newest, us);
      changed.push(data);
    }
    return changed;
  };

  const poll = async (batchId: string, hub: BatchHub, logger: GatewayDeps["logger"]) => {
    try {
      const batch = await batchRecord(deps.reader, batchId);
      if (!batch) return;
      const records = await changedRows(deps.reader, batchId, hub.safe);
      hub.safe = Math.max(hub.safe, Number(batch.now) - SETTLE_MICROS);
      let out = apply(hub, records)
        .map((data) => rowFrame(data, hub.safe))
        .join("");
      if (out) hub.newestSentAs = hub.safe;
      else if (hub.newestSentAs < hub.newest && hub.safe >= hub.newest) {
        out = markFrame(hub.safe);
        hub.newestSentAs = hub.safe;
      }
      const counts = countsOf(hub);
      if (counts !== hub.countsFrame) out += hub.countsFrame = counts;
      if (batch.status !== hub.status) {
        hub.status = batch.status;
        out += hub.batchFrame = batchFrame(batch.status);
      }
      if (!out) return;
      const bytes = Buffer.from(out);
      for (const listener of hub.listeners) listener(bytes);
    } catch (error) {
      logger.warn({ err: error, batchId }, "batch rows poll failed; trying again");
    }
  };

  const open = (batchId: string) => {
    const logger = deps.logger.child({ batchId, sse: true });
    const pending = (async (): Promise<BatchHub> => {
      const batch = await batchRecord(deps.reader, batchId);
      if (!batch) throw new Error(`batch ${batchId} not found`);
      const hub: BatchHub = {
        listeners: new Set(),
        rows: new Map(),
        safe: Number(batch.now) - SETTLE_MICROS,
        newest: 0,
        newestSentAs: 0,
        countsFrame: "",
        batchFrame: batchFrame(batch.status),
        status: batch.status,
        timer: undefined as unknown as NodeJS.Timeout,
      };
      apply(hub, await changedRows(deps.reader, batchId, null));
      hub.newestSentAs = hub.safe;
      hub.countsFrame = countsOf(hub);
      // One poll at a time: the next is scheduled when this one is done, so a slow database is not piled on.
      const loop = () => {
        hub.timer = setTimeout(() => void poll(batchId, hub, logger).finally(() => hubs.get(batchId) === pending && loop()), pollMs);
        hub.timer.unref();
      };
      loop();
      return hub;
    })();
    hubs.set(batchId, pending);
    pending.catch(() => hubs.get(batchId) === pending && hubs.delete(batchId));
    return pending;
  };

  return {
    /**
     * Writes what a client starts with through `listener`: every row (a new client) or the rows changed after
     * `lastEventId` (a resumed one), then the counts and the batch's status; then adds it to the batch's poller
     * (opened if needed), in the same turn, so nothing changes in between. Returns its detach.
     */
    async attach(batchId: string, listener: Listener, lastEventId: number | null): Promise<() => void> {
      for (;;) {
        const pending = hubs.get(batchId) ?? open(batchId);
        const hub = await pending;
        if (hubs.get(batchId) !== pending) continue;
        const since = lastEventId ?? -Infinity;
        const rows = [...hub.rows.values()].filter((row) => row.us > since).sort((a, b) => a.us - b.us);
        // A resume with nothing missed still learns where it is.
        const head = rows.length
          ? rows.map((row) => rowFrame(row.data, hub.safe)).join("")
          : lastEventId !== null
            ? markFrame(Math.max(hub.safe, lastEventId))
            : "";
        listener(Buffer.from(`${head}${hub.countsFrame}${hub.batchFrame}retry: 2000\n\n`));
        hub.listeners.add(listener);
        return () => {
          hub.listeners.delete(listener);
          if (hub.listeners.size === 0 && hubs.get(batchId) === pending) {
            hubs.delete(batchId);
            clearTimeout(hub.timer);
          }
        };
      }
    },
    /** Batches watched right now (tests). */
    get watched() {
      return hubs.size;
    },
  };
}

export type BatchHubs = ReturnType<typeof createBatchHubs>;

/** The life of one client's batch stream: its start, the shared poller's frames, heartbeats, its end. Never throws. */
export async function serveBatchStream(
  resources: { deps: GatewayDeps; hubs: BatchHubs; maxQueuedBytes: number },
  batchId: string,
  lastEventId: number | null,
  sink: SseSink,
) {
  const { deps, hubs } = resources;
  const logger = deps.logger.child({ batchId, sse: true });
  const stream = createSseStream(sink, {
    maxQueuedBytes: resources.maxQueuedBytes,
    onOverflow: (queuedBytes) => logger.warn({ queuedBytes }, "batch stream client too far behind; ending its stream so it resumes with Last-Event-ID"),
  });
  let detach: (() => void) | undefined;
  let keepAlive: NodeJS.Timeout | undefined;
  let shuttingDown = false;
  metrics.sseConnections.inc();
  try {
    detach = await hubs.attach(batchId, (frames) => stream.write(frames), lastEventId);
    keepAlive = setInterval(() => stream.write(KEEP_ALIVE), (deps.sseKeepAliveSeconds ?? 15) * 1000);
    await Promise.race([stream.closed, deps.closing.then(() => void (shuttingDown = true))]);
  } catch (error) {
    logger.warn({ err: error }, "batch stream failed");
  } finally {
    metrics.sseConnections.dec();
    clearInterval(keepAlive);
    detach?.();
  }
  stream.end(shuttingDown ? RETRY_SOON : undefined);
}
