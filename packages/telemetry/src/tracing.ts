import { createRequire } from "node:module";
import { context, propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { NodeSDK, node, resources } from "@opentelemetry/sdk-node";
import { setIdsOnlySpans } from "./trace-context";

export interface Tracing {
  shutdown(): Promise<void>;
}

let active: Tracing | undefined;

/**
 * Starts OpenTelemetry for this process. Services start it from the preload `register.ts` (see there: under
 * ESM, main.ts's static imports load pg before main's body runs, too late for the pg instrumentation). Outgoing HTTP through
 * node:http/https gets client spans; global fetch (undici) does not (no undici instrumentation installed).
 *
 * - OTEL_EXPORTER_OTLP_ENDPOINT set (e.g. http://jaeger:4318): the full NodeSDK, OTLP/HTTP trace exporter,
 *   pg + http instrumentations. Metrics and log exporters stay off (Jaeger takes traces only).
 * - Otherwise: no exporter, but still a tracer provider, the AsyncLocalStorage context manager and the W3C
 *   propagator; withSpan then mints a new span id (and a trace id at the gateway) without building an SDK
 *   span (a profile of the orchestration bench put the SDK's span start/end at ~5 % of each process's CPU, for
 *   spans dropped at their end). We chose this over "propagate the incoming traceparent only" because
 *   it keeps trace ids starting at the gateway and flowing through every hop and log line in local runs
 *   and tests, where nobody runs Jaeger.
 *
 * Idempotent within a process: a second call returns the first one's handle.
 */
export function startTracing(options: { serviceName: string; serviceVersion?: string }): Tracing {
  if (active) return active;
  const serviceVersion = options.serviceVersion ?? process.env.SERVICE_VERSION;
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    const sdk = new NodeSDK({
      serviceName: options.serviceName,
      // service.name and service.version on every span (env OTEL_RESOURCE_ATTRIBUTES is merged in too).
      ...(serviceVersion ? { resource: resources.resourceFromAttributes({ "service.version": serviceVersion }) } : {}),
      traceExporter: new OTLPTraceExporter(),
      instrumentations: [
        // The gateway's stream tokens ride in ?token= (EventSource cannot send headers): redacted in url.query
        // like the library's default list (signed-URL parameters), so no token reaches a trace.
        new HttpInstrumentation({
          redactedQueryParamsServer: [
            "token",
            "sig",
            "Signature",
            "AWSAccessKeyId",
            "X-Goog-Signature",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
          ],
        }),
        new PgInstrumentation(),
      ],
      textMapPropagator: new W3CTraceContextPropagator(),
      metricReaders: [],
      logRecordProcessors: [],
    });
    sdk.start();
    setIdsOnlySpans(false);
    // The instrumentations patch modules as they are require()d. node:http/https were already loaded (the
    // exporter uses them) and ESM imports of builtins do not go through require, so require them once now:
    // that patches the shared builtin objects, which ESM importers see too. pg (CommonJS) is patched when it
    // is first imported, so import it after startTracing.
    const require = createRequire(import.meta.url);
    require("node:http");
    require("node:https");
    active = {
      shutdown: async () => {
        active = undefined;
        await sdk.shutdown();
      },
    };
    return active;
  }
  const provider = new node.NodeTracerProvider();
  provider.register({ propagator: new W3CTraceContextPropagator() });
  // Nothing exports: withSpan mints ids only (trace-context.ts). Spans started straight on a tracer (ffmpeg's) are
  // still real SDK spans, dropped at their end.
  setIdsOnlySpans(true);
  active = {
    shutdown: async () => {
      active = undefined;
      setIdsOnlySpans(false);
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
  return active;
}
