"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import { errorMessage, type Api, type Batch, type BatchCounts, type BatchRow } from "@/lib/api";

/** What the row stream's `row` event carries: the row's state, without its values. */
type RowEvent = Pick<BatchRow, "index" | "status" | "cost" | "output" | "error">;
type CountsEvent = BatchCounts & { cost: number; costSaved: number };

export interface LiveBatch {
  batch: Batch | null;
  rows: BatchRow[];
  error: string | null;
  /** The stream is open (rows change live), or reconnecting. */
  live: boolean;
  reload(): Promise<void>;
}

const RECONNECT_MS = 1500;

/**
 * One batch, live: read once (its settings, estimate and each row's values), then its row stream (GET
 * /batches/:id/events) keeps rows, counts and status current. The stream starts with every row, so nothing changed
 * between the read and the stream is missed; a dropped stream reopens with a fresh token and the last event id.
 */
export function useLiveBatch(api: Api, batchId: string | null): LiveBatch {
  const [batch, setBatch] = useState<Batch | null>(null);
  const [rows, setRows] = useState<BatchRow[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const pending = useRef(new Map<number, RowEvent>());

  const reload = useCallback(async () => {
    if (!batchId) return;
    try {
      const { batch: read } = await api.getBatch(batchId);
      setBatch(read);
      // Row events that came before the read are applied over it (the stream goes on updating from there).
      setRows(read.rows.map((r) => (pending.current.has(r.index) ? { ...r, ...pending.current.get(r.index)! } : r)));
      pending.current = new Map();
      setError(null);
    } catch (e) {
      setError(`Could not load the batch: ${errorMessage(e)}`);
    }
  }, [api, batchId]);

  useEffect(() => {
    if (!batchId) {
      setBatch(null);
      setRows([]);
      return;
    }
    pending.current = new Map();
    setRows([]);
    void reload();
    let source: EventSource | null = null;
    let lastEventId: string | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    // Row events arrive in bursts (a poll's changes); they are applied together on the next frame.
    let flush: number | undefined;
    const applyRows = () => {
      flush = undefined;
      const changes = pending.current;
      pending.current = new Map();
      setRows((current) => {
        if (current.length === 0) {
          // Not read yet: kept until the read lands (reload merges them).
          pending.current = new Map([...changes, ...pending.current]);
          return current;
        }
        return current.map((r) => (changes.has(r.index) ? { ...r, ...changes.get(r.index)! } : r));
      });
    };
    const open = async () => {
      try {
        const url = await api.batchStreamUrl(batchId, lastEventId);
        if (closed) return;
        source = new EventSource(url);
        source.onopen = () => setLive(true);
        const track = (event: MessageEvent) => {
          if (event.lastEventId) lastEventId = event.lastEventId;
        };
        source.addEventListener("row", (event) => {
          track(event as MessageEvent);
          const row = JSON.parse((event as MessageEvent).data) as RowEvent;
          pending.current.set(row.index, row);
          flush ??= requestAnimationFrame(applyRows);
        });
        source.addEventListener("mark", (event) => track(event as MessageEvent));
        source.addEventListener("counts", (event) => {
          const { cost, costSaved, ...counts } = JSON.parse((event as MessageEvent).data) as CountsEvent;
          setBatch((b) => (b ? { ...b, counts, cost, costSaved } : b));
        });
        source.addEventListener("batch", (event) => {
          const { status } = JSON.parse((event as MessageEvent).data) as { status: Batch["status"] };
          setBatch((b) => (b ? { ...b, status } : b));
        });
        source.onerror = () => {
          // The token only opens a stream: every reconnect mints a new one and resumes after the last event.
          source?.close();
          setLive(false);
          if (!closed) timer = setTimeout(() => void open(), RECONNECT_MS);
        };
      } catch {
        setLive(false);
        if (!closed) timer = setTimeout(() => void open(), RECONNECT_MS * 2);
      }
    };
    void open();
    return () => {
      closed = true;
      clearTimeout(timer);
      if (flush !== undefined) cancelAnimationFrame(flush);
      source?.close();
      setLive(false);
    };
  }, [api, batchId, reload]);

  return { batch, rows, error, live, reload };
}
