import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

/** One span as an OTLP/HTTP receiver got it, flattened with its resource's service name and version. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP SpanKind number: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  service: string;
  serviceVersion?: string;
  /** Instrumentation scope, e.g. "@opentelemetry/instrumentation-pg". */
  scope: string;
  attributes: Record<string, unknown>;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
}

export interface OtlpReceiver {
  /** Base URL to put in OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  url: string;
  spans: ReceivedSpan[];
  /** Resolves once `predicate(spans)` holds (checked on every export), or rejects after timeoutMs. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
}
interface KeyValue {
  key: string;
  value: AnyValue;
}

function anyValueOf(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValueOf);
  return undefined;
}

const attrs = (list: KeyValue[] | undefined) => Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValueOf(kv.value)]));

/** OTLP ids in JSON are hex strings per the spec; base64 (proto3 JSON mapping) is accepted too. */
function hexId(id: string | undefined): string | undefined {
  if (!id) return undefined;
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, "base64").toString("hex");
}

/**
 * A local OTLP/HTTP trace receiver (POST /v1/traces) on 127.0.0.1 for tests. @opentelemetry/exporter-trace-otlp-http
 * 0.223 always sends JSON (`content-type: application/json`, its JsonTraceSerializer; protobuf is the separate
 * exporter-trace-otlp-proto package), optionally gzip-compressed: that is what this decodes. Anything else gets 415.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const listeners = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url?.split("?")[0] !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      if (!String(req.headers["content-type"] ?? "").startsWith("application/json")) {
        res.writeHead(415, { "content-type": "text/plain" }).end("this test receiver decodes OTLP/JSON only");
        return;
      }
      try {
        let body = Buffer.concat(chunks);
        if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
        const json = JSON.parse(body.toString("utf8")) as {
          resourceSpans?: Array<{
            resource?: { attributes?: KeyValue[] };
            scopeSpans?: Array<{ scope?: { name?: string }; spans?: Array<Record<string, unknown>> }>;
          }>;
        };
        for (const rs of json.resourceSpans ?? []) {
          const resource = attrs(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                traceId: hexId(s.traceId as string)!,
                spanId: hexId(s.spanId as string)!,
                parentSpanId: hexId(s.parentSpanId as string | undefined),
                name: String(s.name),
                kind: Number(s.kind ?? 0),
                service: String(resource["service.name"] ?? ""),
                serviceVersion: resource["service.version"] as string | undefined,
                scope: ss.scope?.name ?? "",
                attributes: attrs(s.attributes as KeyValue[] | undefined),
                startTimeUnixNano: String(s.startTimeUnixNano ?? ""),
                endTimeUnixNano: String(s.endTimeUnixNano ?? ""),
              });
            }
          }
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
        for (const l of listeners) l();
      } catch (err) {
        res.writeHead(400, { "content-type": "text/plain" }).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    waitFor: (predicate, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (predicate(spans)) {
            cleanup();
            resolve();
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`OTLP receiver: condition not met within ${timeoutMs} ms (${spans.length} spans received)`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
