import { createParser, type EventSourceMessage } from "eventsource-parser";
import { testToken } from "./auth";

export interface SseEvent {
  event: string;
  id?: string;
  data: unknown;
}

/**
 * Mints a stream token for an events URL (`POST <url>/token` with a bearer token), what the editor does
 * before each EventSource (which cannot send an Authorization header).
 */
export async function mintStreamToken(eventsUrl: string, bearer?: string): Promise<string> {
  const response = await fetch(`${eventsUrl}/token`, { method: "POST", headers: { authorization: `Bearer ${bearer ?? (await testToken())}` } });
  if (!response.ok) throw new Error(`POST ${eventsUrl}/token answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { token: string }).token;
}

/**
 * A real SSE client over fetch (what a browser's EventSource does), recording every event so a test can
 * assert order, ids and gaps. `close()` drops the connection like a browser closing a tab. It opens the
 * stream with a freshly minted stream token (from `bearer`, default the testkit's all-roles token), or with
 * `streamToken` as given (null: none).
 */
export function openSse(url: string, options: { lastEventId?: string; bearer?: string; streamToken?: string | null } = {}) {
  const events: SseEvent[] = [];
  const waiters: Array<() => void> = [];
  const controller = new AbortController();
  let failure: unknown;
  let resolveOpen!: () => void;
  let rejectOpen!: (e: unknown) => void;
  const opened = new Promise<void>((resolve, reject) => {
    resolveOpen = resolve;
    rejectOpen = reject;
  });

  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      let data: unknown = message.data;
      try {
        data = JSON.parse(message.data);
      } catch {
        // non-JSON payloads are kept as text
      }
      events.push({ event: message.event ?? "message", id: message.id, data });
      for (const wake of waiters.splice(0)) wake();
    },
  });

  const done = (async () => {
    try {
      const token = options.streamToken !== undefined ? options.streamToken : await mintStreamToken(url, options.bearer);
      const response = await fetch(token === null ? url : `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`, {
        headers: { accept: "text/event-stream", ...(options.lastEventId ? { "last-event-id": options.lastEventId } : {}) },
        signal: controller.signal,
      });
      if (!response.ok || !response.body) throw new Error(`SSE ${url} answered ${response.status}: ${await response.text()}`);
      resolveOpen();
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
    } catch (error) {
      if (!controller.signal.aborted) failure = error;
      rejectOpen(error);
    } finally {
      for (const wake of waiters.splice(0)) wake();
    }
  })();

  return {
    events,
    opened,
    /** The id of the last event received (what a browser sends as Last-Event-ID). */
    get lastEventId() {
      return [...events].reverse().find((e) => e.id !== undefined)?.id;
    },
    /** Waits until `predicate` holds over the events received so far. */
    async waitFor(predicate: (events: SseEvent[]) => boolean, timeoutMs = 30_000): Promise<SseEvent[]> {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(events)) {
        if (failure) throw failure;
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(
            `SSE condition not met within ${timeoutMs} ms; got ${events.length} events: ${JSON.stringify(events.map((e) => [e.event, e.id, (e.data as { status?: string })?.status]))}`,
          );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 250));
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return events;
    },
    async close() {
      controller.abort();
      await done;
    },
  };
}
export type SseClient = ReturnType<typeof openSse>;
