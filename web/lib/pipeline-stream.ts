import type { SerializedPipeline } from "@vp/contracts";
import type { Api, ApiNode } from "./api";
import type { NodeEvent, StructureEvent } from "./graph-state";

/** After the stream dropped: reopen soon (the gateway's shutdown hint is 1 s). */
const RECONNECT_MS = 1000;
/** While the gateway cannot mint a stream token (it is down): try again every two seconds. */
const REOPEN_MS = 2000;

export interface StreamSnapshot {
  pipeline: SerializedPipeline & { nodes: ApiNode[] };
  stateVersions?: Record<string, number>;
}

export interface StreamHandlers {
  onOpen(): void;
  /** The stream dropped, or could not be opened: it is being reopened. */
  onReconnecting(): void;
  onSnapshot(snapshot: StreamSnapshot): void;
  onEvent(event: NodeEvent): void;
  /** Another write (from any page) changed the structure. */
  onStructure(event: StructureEvent): void;
  /** The stream resumed: the pipeline's current structure revision (changes made meanwhile are not replayed). */
  onRevision(revision: number): void;
}

/**
 * A pipeline's SSE stream that reopens itself: every (re)connect mints a fresh stream token, since the browser's own
 * reconnect would reuse the old URL, whose token is only good for opening a stream within a minute. So on any error
 * the stream is closed and reopened here, resuming after the last event seen (?lastEventId=, replayed by the
 * gateway). `lastEventId` is read and advanced in place so a new stream of the same page resumes too. Returns stop.
 */
export function openPipelineStream(api: Api, pipelineId: string, lastEventId: { current: string | undefined }, handlers: StreamHandlers): () => void {
  let source: EventSource | null = null;
  let reopen: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const seen = (event: Event) => {
    const message = event as MessageEvent<string>;
    if (message.lastEventId) lastEventId.current = message.lastEventId;
    return JSON.parse(message.data) as unknown;
  };
  const open = async () => {
    let url: string;
    try {
      url = await api.streamUrl(pipelineId, lastEventId.current);
    } catch {
      if (stopped) return;
      handlers.onReconnecting();
      reopen = setTimeout(() => void open(), REOPEN_MS);
      return;
    }
    if (stopped) return;
    source = new EventSource(url);
    source.onopen = () => handlers.onOpen();
    source.addEventListener("snapshot", (event) => handlers.onSnapshot(seen(event) as StreamSnapshot));
    source.addEventListener("node", (event) => handlers.onEvent(seen(event) as NodeEvent));
    source.addEventListener("structure", (event) => handlers.onStructure(seen(event) as StructureEvent));
    source.addEventListener("revision", (event) => handlers.onRevision((seen(event) as { revision: number }).revision));
    source.onerror = () => {
      if (stopped) return;
      handlers.onReconnecting();
      source?.close();
      clearTimeout(reopen);
      reopen = setTimeout(() => void open(), RECONNECT_MS);
    };
  };
  void open();
  return () => {
    stopped = true;
    clearTimeout(reopen);
    source?.close();
  };
}
