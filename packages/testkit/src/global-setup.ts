/**
 * vitest globalSetup: migrates one template database per test run (`vp_test_template_<pid>`, so two
 * parallel runs never share or drop each other's template), hands its name to the workers (env var
 * VP_TEST_TEMPLATE_DB and vitest's provide/inject), and drops it, plus any test database of this run
 * a test forgot to drop, at the end. Databases left behind by crashed runs (their pid is gone) are
 * dropped at the start.
 */
import type { TestProject } from "vitest/node";
import { migrate, withDatabase } from "@vp/db";
import { RUN_ID_ENV, TEMPLATE_ENV, TEMPLATE_PREFIX, TEST_DB_PREFIX, connectMaintenance, dropDatabase, listDatabases, testServerUrl } from "./db";
import { ensureTestServices } from "./containers";

declare module "vitest" {
  export interface ProvidedContext {
    vpTestTemplateDb: string;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The run id (pid) encoded in a template or test database name. */
function ownerPid(name: string): number | undefined {
  const m = name.startsWith(TEMPLATE_PREFIX) ? /^(\d+)$/.exec(name.slice(TEMPLATE_PREFIX.length)) : /^(\d+)_[0-9a-f]+$/.exec(name.slice(TEST_DB_PREFIX.length));
  return m ? Number(m[1]) : undefined;
}

async function dropLeftovers(serverUrl: string, shouldDrop: (name: string, pid: number) => boolean): Promise<void> {
  const names = [...(await listDatabases(TEST_DB_PREFIX, serverUrl)), ...(await listDatabases(TEMPLATE_PREFIX, serverUrl))];
  // Clones first, then templates.
  for (const name of names) {
    const pid = ownerPid(name);
    if (pid !== undefined && shouldDrop(name, pid)) await dropDatabase(name, serverUrl).catch(() => {});
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Local services when they run (always here and in CI); testcontainers on a laptop with Docker.
  const stopContainers = await ensureTestServices();
  const serverUrl = testServerUrl();
  // Fails loudly (never a silent skip) when Postgres is down.
  const probe = await connectMaintenance(serverUrl);
  await probe.end();

  const runId = String(process.pid);
  await dropLeftovers(serverUrl, (_name, pid) => pid !== process.pid && !pidAlive(pid));

  const template = `${TEMPLATE_PREFIX}${runId}`;
  await dropDatabase(template, serverUrl);
  await migrate({ adminUrl: withDatabase(serverUrl, template) });
  // Nobody may connect to the template (a connection would make CREATE DATABASE ... TEMPLATE fail).
  const client = await connectMaintenance(serverUrl);
  try {
    await client.query(`ALTER DATABASE "${template}" WITH ALLOW_CONNECTIONS false`);
  } finally {
    await client.end();
  }

  process.env[TEMPLATE_ENV] = template;
  process.env[RUN_ID_ENV] = runId;
  project.provide("vpTestTemplateDb", template);

  return async () => {
    await dropLeftovers(serverUrl, (_name, pid) => pid === process.pid);
    await stopContainers();
  };
}
