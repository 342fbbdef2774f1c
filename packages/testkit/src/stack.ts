import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "./db";
import { createTestBus, type TestBus } from "./nats";
import { startStack, type ServiceName, type Stack } from "./processes";

export interface TestStack {
  db: TestDatabase;
  bus: TestBus;
  stack: Stack;
  /** A fresh directory holding this stack's storage/ and work/ (and anything the test writes). */
  scratch: string;
  /** Stops the services, deletes the bus namespace and the database, removes the scratch directory. */
  cleanup(): Promise<void>;
}

/**
 * The fixture every end-to-end file starts with: a cloned test database, its own bus namespace (consumers
 * declared with the same ack wait the services get), a scratch directory, and the services as processes.
 */
export async function startTestStack(options: {
  prefix: string;
  jobAckWaitMs: number;
  env?: Record<string, string>;
  services?: ServiceName[];
}): Promise<TestStack> {
  const scratch = await mkdtemp(join(tmpdir(), options.prefix));
  const db = await createTestDatabase();
  const bus = await createTestBus({ jobAckWaitMs: options.jobAckWaitMs });
  const stack = await startStack({
    databaseAdminUrl: db.adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    env: { JOB_ACK_WAIT_MS: String(options.jobAckWaitMs), ...options.env },
    services: options.services,
  });
  return {
    db,
    bus,
    stack,
    scratch,
    cleanup: async () => {
      await stack.stop();
      await bus.cleanup();
      await db.drop();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}
