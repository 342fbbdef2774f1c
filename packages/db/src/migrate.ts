import { fileURLToPath } from "node:url";
import pg from "pg";
import { PG_MIGRATE_LOCK_ID, runner } from "node-pg-migrate";
import { databaseName, redactUrl, withDatabase } from "./connection";
import { PG, pgCode } from "./errors";

/** packages/db/migrations (SQL files with `-- Up Migration` / `-- Down Migration` markers). */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url));
export const MIGRATIONS_TABLE = "pgmigrations";

export interface MigrateOptions {
  /** A superuser (or database owner with CREATEDB/CREATEROLE) URL; its path names the database. */
  adminUrl: string;
  /** Progress lines (what is applied). Default: silent. */
  log?: (message: string) => void;
}

export interface MigrateResult {
  database: string;
  createdDatabase: boolean;
  /** Names of the migrations applied by this call (empty when the database was up to date). */
  applied: string[];
}

/**
 * Creates the database named in `adminUrl` if it is missing (via the `postgres` maintenance database on
 * the same server), then runs every pending migration in one transaction. Idempotent, and safe to run
 * concurrently: a second caller waits on node-pg-migrate's advisory lock, then finds nothing to do.
 */
export async function migrate({ adminUrl, log }: MigrateOptions): Promise<MigrateResult> {
  const database = databaseName(adminUrl);
  const createdDatabase = await ensureDatabase(adminUrl, database, log);

  const client = new pg.Client({ connectionString: adminUrl, application_name: "vp-migrate" });
  client.on("error", () => {
    /* surfaced by the failing query */
  });
  await client.connect();
  try {
    // node-pg-migrate only *tries* its advisory lock and fails with "Another migration is already
    // running". Wait for the same lock first on this session (advisory locks are re-entrant per
    // session), so a concurrent migrate() queues instead of failing, then sees nothing to run.
    await client.query(`SELECT pg_advisory_lock(${PG_MIGRATE_LOCK_ID})`);
    try {
      const quiet = () => {};
      const info = log ?? quiet;
      const ran = await runner({
        dbClient: client,
        dir: MIGRATIONS_DIR,
        migrationsTable: MIGRATIONS_TABLE,
        direction: "up",
        singleTransaction: true,
        checkOrder: true,
        logger: { debug: quiet, info, warn: info, error: info },
      });
      return { database, createdDatabase, applied: ran.map((m) => m.name) };
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${PG_MIGRATE_LOCK_ID})`).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/** CREATE DATABASE <name> unless it exists. True when this call created it. */
export async function ensureDatabase(adminUrl: string, database: string, log?: (m: string) => void): Promise<boolean> {
  const maintenance = new pg.Client({
    connectionString: withDatabase(adminUrl, "postgres"),
    application_name: "vp-migrate",
  });
  maintenance.on("error", () => {});
  try {
    await maintenance.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable at ${redactUrl(adminUrl)}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const { rowCount } = await maintenance.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [database]);
    if (rowCount) return false;
    try {
      // The name was validated against /^[a-z_][a-z0-9_]*$/ by databaseName().
      await maintenance.query(`CREATE DATABASE "${database}"`);
    } catch (err) {
      // A concurrent migrate() created it first.
      if (pgCode(err) === PG.duplicateDatabase || pgCode(err) === PG.uniqueViolation) return false;
      throw err;
    }
    log?.(`Created database ${database}`);
    return true;
  } finally {
    await maintenance.end().catch(() => {});
  }
}
