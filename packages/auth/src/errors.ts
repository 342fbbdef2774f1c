/** The request carries no usable credentials (missing, malformed, expired, wrong key, issuer or audience): 401. */
export class UnauthenticatedError extends Error {
  readonly status = 401 as const;
  constructor(
    message: string,
    /** RFC 6750 error code for the WWW-Authenticate header: invalid_request (missing) or invalid_token. */
    readonly code: "invalid_request" | "invalid_token" = "invalid_token",
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "UnauthenticatedError";
  }
}

/** The token is valid but lacks the role the request needs: 403. */
export class ForbiddenError extends Error {
  readonly status = 403 as const;
  constructor(
    message: string,
    readonly missingRole?: string,
  ) {
    super(message);
    this.name = "ForbiddenError";
  }
}

/** The auth configuration cannot work (no key source, a short secret): fails at start-up. */
export class AuthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthConfigError";
  }
}
