/**
 * The gateway app as its HTTP tests build it: real Postgres pools and a test bus, JWTs signed with the test secret,
 * local storage under a scratch directory, no scheduler behind it. Imported by tests only.
 */
import { join } from "node:path";
import type { Queryable } from "@vp/db";
import { createLocalStorage } from "@vp/storage";
import type { Logger } from "@vp/telemetry";
import { TEST_AUTH, type TestBus } from "@vp/testkit";
import { createApp } from "./app";
import { createGatewayAuth, type GatewayAuth } from "./auth";
import type { GatewayDeps } from "./deps";

/** Token checks with the test issuer's secret; the dev login only when asked for. */
export function testAuth(logger: Logger, options: { devLogin?: boolean } = {}): GatewayAuth {
  return createGatewayAuth(
    {
      mode: "jwt",
      secret: TEST_AUTH.secret,
      issuer: TEST_AUTH.issuer,
      audience: TEST_AUTH.audience,
      devLogin: options.devLogin ?? false,
      devLoginTtlSeconds: 3600,
    },
    logger,
  );
}

export interface TestAppBase {
  reader: Queryable;
  editor: Queryable;
  bus: TestBus;
  /** Local storage goes under `<scratch>/storage`. */
  scratch: string;
  logger: Logger;
}

/** createApp with the tests' defaults; `over` replaces any dependency (storage, auth, limits, ...). */
export function testApp({ reader, editor, bus, scratch, logger }: TestAppBase, over: Partial<GatewayDeps> = {}): ReturnType<typeof createApp> {
  return createApp({
    reader,
    editor,
    bus: bus.bus,
    topology: bus.topology,
    storage: createLocalStorage({ root: join(scratch, "storage") }),
    logger,
    auth: testAuth(logger),
    maxUploadBytes: 64 * 1024,
    // No scheduler runs here: an accepted execute answers 202 after this wait.
    executeVerdictTimeoutMs: 200,
    corsOrigins: [],
    closing: new Promise(() => {}),
    ...over,
  });
}
