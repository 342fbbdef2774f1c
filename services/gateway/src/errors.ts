import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ZodError } from "zod";
import { ForbiddenError, KeySourceUnavailableError, UnauthenticatedError } from "@vp/auth";
import { BusUnavailableError, RequestTimeoutError } from "@vp/bus";
import {
  ConflictError,
  NotFoundError as DbNotFoundError,
  isPostgresUnavailable,
  PipelineLimitError,
  StaleRevisionError,
  toSerializedNode,
  ValidationError as DbValidationError,
} from "@vp/db";
import { NotFoundError as StorageNotFoundError, StorageKeyError, TooLargeError } from "@vp/storage";
import type { Logger } from "@vp/telemetry";

/** An error whose message is safe and useful to show the client, with its HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: 400 | 404 | 408 | 409 | 413 | 415 | 416 | 422 | 503,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export const notFound = (what: "Pipeline" | "Node" | "Output" | "Uploaded file" | "Revision") => new HttpError(404, `${what} not found`);

export function zodMessage(error: ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length ? issue.path.join(".") : "body";
      return `${path}: ${issue.message}`;
    })
    .join("; ");
}

/** The one place domain errors become HTTP statuses. Anything unexpected is a 500 without internals. */
export function createErrorHandler(logger: Logger) {
  return (error: Error, c: Context) => {
    if (error instanceof HttpError) return c.json({ error: error.message, ...error.details }, error.status);
    if (error instanceof UnauthenticatedError) {
      // RFC 6750: the challenge names the scheme and why; the reason never quotes the token.
      const challenge = `Bearer realm="vp", error="${error.code}", error_description="${error.message.replace(/["\\]/g, "'")}"`;
      return c.json({ error: error.message }, 401, { "www-authenticate": challenge });
    }
    if (error instanceof ForbiddenError) return c.json({ error: error.message, ...(error.missingRole ? { missing_role: error.missingRole } : {}) }, 403);
    if (error instanceof KeySourceUnavailableError) {
      logger.warn({ err: error }, "auth keys unavailable");
      return c.json({ error: error.message }, 503);
    }
    if (error instanceof ZodError) return c.json({ error: zodMessage(error) }, 422);
    // A conditional write based on an older revision: the current node comes back so the editor can show both.
    if (error instanceof StaleRevisionError) {
      return c.json(
        { error: error.message, ...(error.current ? { node: toSerializedNode(error.current), revision: Number(error.current.revision) } : {}) },
        409,
      );
    }
    if (error instanceof ConflictError) return c.json({ error: error.message }, 409);
    if (error instanceof DbNotFoundError) return c.json({ error: error.message }, 404);
    // Node count: the request is fine, the pipeline is full (422); structure bytes: the content is too large (413).
    if (error instanceof PipelineLimitError) return c.json({ error: error.message, limit: error.limit, max: error.max }, error.limit === "nodes" ? 422 : 413);
    // A value Postgres refuses to store (request checks catch these first; this keeps any other one a 4xx).
    if (error instanceof DbValidationError) return c.json({ error: error.message }, 422);
    if (error instanceof StorageNotFoundError) return c.json({ error: "Output file not found in storage" }, 404);
    if (error instanceof StorageKeyError) return c.json({ error: "Invalid storage key" }, 400);
    if (error instanceof TooLargeError) return c.json({ error: error.message }, 413);
    if (error instanceof BusUnavailableError || error instanceof RequestTimeoutError) {
      logger.warn({ err: error }, "bus unavailable");
      return c.json({ error: `The message bus is unavailable, nothing was queued: ${error.message}. Try again shortly.` }, 503);
    }
    if (error instanceof HTTPException) return c.json({ error: error.message || "Bad request" }, error.status);
    // Postgres down or restarting, also in the middle of a statement ("Connection terminated unexpectedly", no code):
    // a 503 the client retries, never a 500 (a write cut before its COMMIT stored nothing).
    if (isPostgresUnavailable(error)) {
      logger.warn({ err: error }, "database unavailable");
      return c.json({ error: "The database is unavailable. Try again shortly." }, 503);
    }
    logger.error({ err: error, path: c.req.path, method: c.req.method }, "unhandled error");
    return c.json({ error: "Internal server error" }, 500);
  };
}
