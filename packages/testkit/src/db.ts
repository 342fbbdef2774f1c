/**
 * Test databases on the machine's real PostgreSQL (no Docker): the vitest global setup migrates one
 * template database per run; every test file clones it with CREATE DATABASE ... TEMPLATE (fast) and
 * drops its clone at the end.
 */
import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { DB_ROLES, NODE_COLUMNS, PIPELINE_COLUMNS, createPool, migrate, redactUrl, roleUrl, withDatabase, type NodeRow, type PipelineRow } from "@vp/db";
import type { NodeStatus, NodeType } from "@vp/contracts";

/** The server the tests use (its database part is ignored). */
export const DEFAULT_TEST_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";
/** Env var carrying the template database's name from the global setup to the workers. */
export const TEMPLATE_ENV = "VP_TEST_TEMPLATE_DB";
/** Env var carrying the id of the test run (the global setup's pid); part of every database name. */
export const RUN_ID_ENV = "VP_TEST_RUN_ID";

export const TEMPLATE_PREFIX = "vp_test_template_";
export const TEST_DB_PREFIX = "vp_t_";

export function testServerUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.DATABASE_ADMIN_URL || DEFAULT_TEST_ADMIN_URL;
}

/** A connected client on the `postgres` maintenance database, or a clear error saying how to fix it. */
export async function connectMaintenance(serverUrl = testServerUrl()): Promise<pg.Client> {
  const url = withDatabase(serverUrl, "postgres");
  const client = new pg.Client({ connectionString: url, application_name: "vp-testkit", connectionTimeoutMillis: 5000 });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw new Error(
      `PostgreSQL is not reachable at ${redactUrl(url)}: start it with \`pg_ctlcluster 15 main start\` ` +
        `or set DATABASE_ADMIN_URL (${(err as Error).message})`,
      { cause: err },
    );
  }
  return client;
}

function assertSafeName(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`Unsafe database name ${JSON.stringify(name)}`);
  return name;
}

/** DROP DATABASE IF EXISTS ... WITH (FORCE): terminates leftover connections. */
export async function dropDatabase(name: string, serverUrl = testServerUrl()): Promise<void> {
  const client = await connectMaintenance(serverUrl);
  try {
    await client.query(`DROP DATABASE IF EXISTS "${assertSafeName(name)}" WITH (FORCE)`);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function listDatabases(prefix: string, serverUrl = testServerUrl()): Promise<string[]> {
  const client = await connectMaintenance(serverUrl);
  try {
    const { rows } = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname`, [prefix]);
    return rows.map((r) => r.datname);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The template this process should clone: from the global setup (env var, or vitest's provide/inject). */
async function templateName(): Promise<string | undefined> {
  const fromEnv = process.env[TEMPLATE_ENV];
  if (fromEnv) return fromEnv;
  if (process.env.VITEST) {
    try {
      const { inject } = await import("vitest");
      const injected = (inject as (key: string) => unknown)("vpTestTemplateDb");
      if (typeof injected === "string" && injected) return injected;
    } catch {
      /* not inside a vitest worker */
    }
  }
  return undefined;
}

function runId(): string {
  const id = process.env[RUN_ID_ENV];
  return id && /^[0-9]+$/.test(id) ? id : String(process.pid);
}

export interface TestDatabase {
  name: string;
  /** Superuser URL of this database. */
  adminUrl: string;
  urls: { editor: string; stateWriter: string; reader: string };
  /** Superuser pool (fixtures, assertions; bypasses column ownership). */
  admin: pg.Pool;
  /** One pool per role, connected as vp_editor / vp_state_writer / vp_reader. */
  pools: { editor: pg.Pool; stateWriter: pg.Pool; reader: pg.Pool };
  /** Ends every pool and drops the database. Idempotent. */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database `vp_t_<run>_<random>`, cloned from the run's template (or, outside the
 * vitest global setup, migrated from scratch).
 */
export async function createTestDatabase(opts: { serverUrl?: string; maxPerPool?: number } = {}): Promise<TestDatabase> {
  const serverUrl = opts.serverUrl ?? testServerUrl();
  const name = `${TEST_DB_PREFIX}${runId()}_${randomBytes(5).toString("hex")}`;
  const adminUrl = withDatabase(serverUrl, name);
  const template = await templateName();

  if (template) {
    const client = await connectMaintenance(serverUrl);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await client.query(`CREATE DATABASE "${name}" TEMPLATE "${assertSafeName(template)}"`);
          break;
        } catch (err) {
          // "source database is being accessed by other users": someone is briefly connected to the template.
          if ((err as { code?: string }).code === "55006" && attempt < 20) {
            await new Promise((r) => setTimeout(r, 100 * attempt));
            continue;
          }
          throw err;
        }
      }
    } finally {
      await client.end().catch(() => {});
    }
  } else {
    await migrate({ adminUrl });
  }

  const urls = {
    editor: roleUrl(adminUrl, DB_ROLES.editor),
    stateWriter: roleUrl(adminUrl, DB_ROLES.stateWriter),
    reader: roleUrl(adminUrl, DB_ROLES.reader),
  };
  const max = opts.maxPerPool ?? 10;
  const admin = createPool({ url: adminUrl, applicationName: "vp-test-admin", max, onError: () => {} });
  const pools = {
    editor: createPool({ url: urls.editor, applicationName: "vp-test-editor", max, onError: () => {} }),
    stateWriter: createPool({ url: urls.stateWriter, applicationName: "vp-test-state-writer", max, onError: () => {} }),
    reader: createPool({ url: urls.reader, applicationName: "vp-test-reader", max, onError: () => {} }),
  };
  let dropped: Promise<void> | undefined;
  return {
    name,
    adminUrl,
    urls,
    admin,
    pools,
    drop() {
      dropped ??= (async () => {
        await Promise.all([admin, pools.editor, pools.stateWriter, pools.reader].map((p) => p.end().catch(() => {})));
        await dropDatabase(name, serverUrl);
      })();
      return dropped;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Fixtures (pipeline and node factories), inserted as the superuser so any status/metadata/output works.

type Queryable = Pick<pg.Pool, "query"> | Pick<pg.PoolClient, "query">;

export interface PipelineFixture {
  id?: string;
  title?: string;
  version?: string;
  config?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  created_at?: Date | string;
  updated_at?: Date | string;
}

/** factory :video_production_pipeline */
export async function insertPipelineFixture(admin: Queryable, fx: PipelineFixture = {}): Promise<PipelineRow> {
  const id = fx.id ?? randomUUID();
  const config = fx.config ?? { storage: { bucket: "jiki-videos-test", prefix: `pipelines/${id}/` }, workingDirectory: "./output" };
  const metadata = fx.metadata ?? {
    totalCost: 0,
    estimatedTotalCost: 0,
    progress: { completed: 0, in_progress: 0, pending: 0, failed: 0, total: 0 },
  };
  const { rows } = await admin.query<PipelineRow>(
    `INSERT INTO video_production_pipelines (id, title, version, config, metadata, created_at, updated_at)
     VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, COALESCE($6::timestamptz, now()), COALESCE($7::timestamptz, now()))
     RETURNING ${PIPELINE_COLUMNS}`,
    [id, fx.title ?? "Test Pipeline", fx.version ?? "1.0", JSON.stringify(config), JSON.stringify(metadata), fx.created_at ?? null, fx.updated_at ?? null],
  );
  return rows[0]!;
}

export type NodeTrait = "completed" | "merge_videos" | "talking_head";

export interface NodeFixture {
  /** Inserted with a fresh pipeline fixture when omitted (the factory's association). */
  pipelineId?: string;
  id?: string;
  title?: string;
  type?: NodeType;
  inputs?: Record<string, string[]>;
  config?: Record<string, unknown>;
  asset?: Record<string, unknown> | null;
  status?: NodeStatus;
  metadata?: Record<string, unknown> | null;
  output?: Record<string, unknown> | null;
  state_version?: number;
  created_at?: Date | string;
  /** FactoryBot traits; explicit fields win over traits. */
  traits?: readonly NodeTrait[];
  /** Shorthand for `traits: ["completed"]`. */
  completed?: boolean;
}

function traitDefaults(traits: readonly NodeTrait[]): Partial<NodeFixture> {
  let out: Partial<NodeFixture> = {};
  for (const t of traits) {
    switch (t) {
      case "merge_videos":
        out = { ...out, type: "merge-videos", config: { provider: "ffmpeg" } };
        break;
      case "talking_head":
        out = { ...out, type: "talking-head", config: { provider: "heygen", avatarId: "avatar-1", voiceId: "voice-1" } };
        break;
      case "completed":
        out = {
          ...out,
          status: "completed",
          metadata: {
            startedAt: new Date(Date.now() - 3600_000).toISOString(),
            completedAt: new Date().toISOString(),
            cost: 0.05,
          },
          output: { type: "video", s3Key: "output/test.mp4", duration: 60.0, size: 5_242_880 },
        };
        break;
    }
  }
  return out;
}

/** factory :video_production_node (traits :completed, :merge_videos, :talking_head) */
export async function insertNodeFixture(admin: Queryable, fx: NodeFixture = {}): Promise<NodeRow> {
  const t = traitDefaults([...(fx.traits ?? []), ...(fx.completed ? (["completed"] as const) : [])]);
  const pipelineId = fx.pipelineId ?? (await insertPipelineFixture(admin)).id;
  const has = <K extends keyof NodeFixture>(k: K) => Object.hasOwn(fx, k) && fx[k] !== undefined;
  const pick = <K extends keyof NodeFixture>(k: K, fallback: NodeFixture[K]): NodeFixture[K] => (has(k) ? fx[k] : t[k] !== undefined ? t[k] : fallback);
  const jsonOrNull = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
  const { rows } = await admin.query<NodeRow>(
    `INSERT INTO video_production_nodes
       (id, pipeline_id, title, type, inputs, config, asset, status, metadata, output, state_version, created_at)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9::jsonb, $10::jsonb, $11, COALESCE($12::timestamptz, clock_timestamp()))
     RETURNING ${NODE_COLUMNS}`,
    [
      fx.id ?? randomUUID(),
      pipelineId,
      pick("title", "Test Node"),
      pick("type", "asset"),
      JSON.stringify(pick("inputs", {})),
      JSON.stringify(pick("config", {})),
      jsonOrNull(pick("asset", null)),
      pick("status", "pending"),
      jsonOrNull(pick("metadata", null)),
      jsonOrNull(pick("output", null)),
      fx.state_version ?? 0,
      fx.created_at ?? null,
    ],
  );
  return rows[0]!;
}
