import pg from "pg";

/** Where the services find Postgres when nothing else is configured (local development). */
export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/video_production";

/** The three login roles the migration creates (architecture section 3: column ownership). */
export const DB_ROLES = {
  editor: "vp_editor",
  stateWriter: "vp_state_writer",
  reader: "vp_reader",
} as const;
export type DbRole = (typeof DB_ROLES)[keyof typeof DB_ROLES];

/** What every query helper needs: a pg.Pool or a checked-out pg.PoolClient. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * Something a transaction can be run on: a pg.Pool (a client is checked out for the transaction), a
 * pg.PoolClient or a connected pg.Client that is not inside a transaction. Same shape as Queryable, so
 * every query helper accepts whatever the caller holds; withTransaction checks at run time.
 */
export type Db = Queryable;

export interface CreatePoolOptions {
  url: string;
  /** Shows up in pg_stat_activity and in Postgres logs. */
  applicationName: string;
  max?: number;
  /** Called when an idle client errors (the server restarted, the network dropped). Default: console.warn. */
  onError?: (err: Error) => void;
}

export function createPool(opts: CreatePoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    application_name: opts.applicationName,
    max: opts.max ?? 10,
  });
  // Without this listener an idle client's error (e.g. the server terminated the connection) is an
  // unhandled 'error' event and crashes the process. The pool drops the broken client by itself.
  const report = (err: Error, state: "idle" | "checked-out") => {
    if (opts.onError) opts.onError(err);
    else console.warn(`[db] ${state} client error (${opts.applicationName}): ${err.message}`);
  };
  pool.on("error", (err) => report(err, "idle"));
  // pg-pool removes its listener while a client is checked out, so a connection lost between two queries of a
  // transaction (the server stopped or restarted) was an unhandled 'error' event that killed the process
  // (PostgreSQL-outage fault scenario, tests/faults/postgres-outage.test.ts). The transaction's next query fails
  // instead, and the pool drops the broken client when it is released.
  const checkedOut = new WeakSet<pg.PoolClient>();
  pool.on("acquire", (client) => checkedOut.add(client));
  pool.on("release", (_err, client) => checkedOut.delete(client));
  pool.on("connect", (client) => {
    client.on("error", (err) => {
      if (checkedOut.has(client)) report(err, "checked-out");
    });
  });
  return pool;
}

/** `VP_EDITOR_PASSWORD`, `VP_STATE_WRITER_PASSWORD`, `VP_READER_PASSWORD`. */
export function rolePasswordEnv(role: DbRole): string {
  return `${role.toUpperCase()}_PASSWORD`;
}

/**
 * The admin URL with the user replaced by `role`. The password comes from the env variable
 * `VP_<ROLE>_PASSWORD` (e.g. VP_STATE_WRITER_PASSWORD) if set, else none (trust auth locally).
 */
export function roleUrl(adminUrl: string, role: DbRole, env: NodeJS.ProcessEnv = process.env): string {
  const u = new URL(adminUrl);
  u.username = role;
  const password = env[rolePasswordEnv(role)];
  u.password = password ? encodeURIComponent(password) : "";
  return u.toString();
}

/** The database name in a postgres:// URL, validated so it can be interpolated into DDL. */
export function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ""));
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
    throw new Error(`Invalid database name ${JSON.stringify(name)} in URL (expected /^[a-z_][a-z0-9_]*$/)`);
  }
  return name;
}

/** The same URL pointing at another database on the same server (e.g. the `postgres` maintenance db). */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A URL with the password hidden, for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<invalid url>";
  }
}

interface Checkout {
  client: Queryable;
  release?: (err?: Error) => void;
}

async function checkout(db: Queryable): Promise<Checkout> {
  if (db instanceof pg.Pool) {
    const client = await db.connect();
    return { client, release: (err) => client.release(err) };
  }
  // A checked-out pool client, or a plain connected client: run the transaction on it.
  if ("release" in db || db instanceof pg.Client) return { client: db };
  // A pool from another copy of pg (duck-typed).
  const maybePool = db as { connect?: () => Promise<pg.PoolClient> };
  if (typeof maybePool.connect === "function") {
    const client = await maybePool.connect();
    return { client, release: (err) => client.release(err) };
  }
  throw new TypeError("A transaction needs a pg.Pool, a pg.PoolClient or a pg.Client");
}

const RETRYABLE = new Set(["40P01", "40001"]);

/**
 * A client already inside a transaction that someone else began and will commit (the state-writer's group commit,
 * `runStateBatch` in state.ts). withTransaction given one runs `fn` under a SAVEPOINT instead of BEGIN/COMMIT: a
 * failing `fn` rolls back to its savepoint and the enclosing transaction goes on with the others' work.
 */
export interface TransactionScope extends Queryable {
  readonly inTransaction: true;
  /** A fresh savepoint name, unique within the enclosing transaction. */
  nextSavepoint(): string;
  /** Set when a rollback to a savepoint failed: the enclosing transaction is lost and must not commit. */
  broken?: Error;
}

export function isTransactionScope(db: Queryable): db is TransactionScope {
  return (db as Partial<TransactionScope>).inTransaction === true;
}

async function withSavepoint<T>(scope: TransactionScope, fn: (client: Queryable) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const name = scope.nextSavepoint();
    await scope.query(`SAVEPOINT ${name}`);
    try {
      // Not released: a round trip less per member; the enclosing transaction's COMMIT ends them all.
      return await fn(scope);
    } catch (err) {
      try {
        await scope.query(`ROLLBACK TO SAVEPOINT ${name}`);
      } catch (rollbackErr) {
        scope.broken ??= rollbackErr as Error;
        throw err;
      }
      const code = (err as { code?: string }).code;
      if (code && RETRYABLE.has(code) && attempt < 4) continue;
      throw err;
    }
  }
}

/**
 * Runs `fn` in one transaction (BEGIN ... COMMIT, ROLLBACK on error). Given a pool, a client is checked
 * out for it; given a client, it must not already be inside a transaction. A deadlock or serialization
 * failure (which the lock order should prevent) is retried a few times. Given a TransactionScope, `fn` runs under
 * a savepoint of the enclosing transaction (retried the same way after a rollback to it).
 */
export async function withTransaction<T>(db: Queryable, fn: (client: Queryable) => Promise<T>): Promise<T> {
  if (isTransactionScope(db)) return withSavepoint(db, fn);
  for (let attempt = 1; ; attempt++) {
    const { client, release } = await checkout(db);
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      try {
        const result = await fn(client);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
        throw err;
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code && RETRYABLE.has(code) && attempt < 4) continue;
      throw err;
    } finally {
      release?.(broken);
    }
  }
}
