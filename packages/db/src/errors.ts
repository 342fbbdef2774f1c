/** Errors the db package throws for expected conditions; callers map them to 4xx answers. */

export class DbError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DbError";
  }
}

/** A row that must exist does not (missing pipeline on createNode, ...). */
export class NotFoundError extends DbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NotFoundError";
  }
}

/** A row with the same id already exists. */
export class ConflictError extends DbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConflictError";
  }
}

/** A value the schema refuses (CHECK constraint: unknown node type or status, malformed JSON, ...). */
export class ValidationError extends DbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ValidationError";
  }
}

/** A write would take a pipeline past one of its limits (@vp/contracts PipelineLimits); nothing was written. */
export class PipelineLimitError extends DbError {
  constructor(
    message: string,
    readonly limit: "nodes" | "structureBytes",
    readonly max: number,
    readonly actual: number,
  ) {
    super(message);
    this.name = "PipelineLimitError";
  }
}

/** The Postgres SQLSTATE of an error thrown by pg, if any. */
export function pgCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

export const PG = {
  uniqueViolation: "23505",
  foreignKeyViolation: "23503",
  checkViolation: "23514",
  notNullViolation: "23502",
  invalidText: "22P02",
  untranslatableCharacter: "22P05",
  insufficientPrivilege: "42501",
  deadlock: "40P01",
  serializationFailure: "40001",
  duplicateDatabase: "42P04",
  objectInUse: "55006",
  invalidCatalogName: "3D000",
} as const;

/** Postgres is down, restarting or cut off: connection refused/reset, admin or crash shutdown, starting up, lost link. */
const PG_UNAVAILABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "57P01", "57P02", "57P03", "08000", "08003", "08006"]);

/**
 * Whether an error says the database is unavailable rather than that the statement is wrong. A server stopped in the
 * middle of a statement often reaches node-postgres as "Connection terminated unexpectedly", with no code at all.
 */
export function isPostgresUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    (typeof code === "string" && PG_UNAVAILABLE.has(code)) ||
    (error instanceof Error && /Connection terminated|not queryable|connect ECONNREFUSED/i.test(error.message))
  );
}

/**
 * A conditional write (If-Match) based on a revision of a node that is no longer its current one: someone changed
 * or removed it since. Nothing was written; `current` is the node as it is now (absent when it was removed).
 */
export class StaleRevisionError extends ConflictError {
  constructor(
    message: string,
    readonly current: import("./rows").NodeRow | null,
  ) {
    super(message);
    this.name = "StaleRevisionError";
  }
}
