import { randomBytes } from "node:crypto";
import { createRemoteJWKSet, errors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { AuthConfigError, UnauthenticatedError } from "./errors";
import { rolesFromClaim, type Principal, type Role } from "./roles";

/** Shortest accepted HS256 secret, in bytes (RFC 7518 3.2: the key must be at least as long as the hash). */
export const MIN_SECRET_BYTES = 32;
/** Algorithms accepted for bearer tokens from a JWKS unless configured otherwise. */
export const JWKS_ALGORITHMS = ["RS256", "ES256"];
/** Stream tokens: their own issuer, audience and type, so a stream token is never a bearer token and back. */
export const STREAM_ISSUER = "vp-gateway";
export const STREAM_AUDIENCE = "vp-event-stream";
export const STREAM_TOKEN_TYPE = "vp-stream+jwt";
/** Upload tickets: the gateway's record of an upload in progress, handed to the client and back (never a bearer or stream token). */
export const UPLOAD_AUDIENCE = "vp-upload";
export const UPLOAD_TOKEN_TYPE = "vp-upload+jwt";

export interface AuthConfig {
  /** Expected `iss` of bearer tokens. */
  issuer: string;
  /** Expected `aud` of bearer tokens. */
  audience: string;
  /**
   * HS256 key: verifies bearer tokens when there is no JWKS URL, and always signs the gateway's own short-lived
   * stream tokens (shared by every gateway replica).
   */
  secret: string;
  /** Bearer tokens are verified against this JWKS (RS256/ES256) instead of the secret. */
  jwksUrl?: string;
  /** Accepted bearer algorithms; default HS256 with a secret, RS256 and ES256 with a JWKS. Never "none". */
  algorithms?: string[];
  /** Seconds of clock skew tolerated on exp/nbf/iat (small: default 5). */
  clockToleranceSeconds?: number;
  /** The claim holding the roles (an array or a space-separated string); default "roles". */
  rolesClaim?: string;
  /** Lifetime of a stream token, i.e. the time a client has to open the stream with it; default 60 s. */
  streamTokenTtlSeconds?: number;
}

/** A new random secret for local use (256 bits, base64url). */
export const generateSecret = () => randomBytes(32).toString("base64url");

const secretKey = (secret: string) => new TextEncoder().encode(secret);

function checkSecret(secret: string) {
  if (Buffer.byteLength(secret, "utf8") < MIN_SECRET_BYTES) {
    throw new AuthConfigError(`AUTH_SECRET must be at least ${MIN_SECRET_BYTES} bytes (generate one with: openssl rand -hex 32)`);
  }
}

/** Signs an HS256 access token (the dev login and tests; production tokens come from the identity provider). */
export async function signAccessToken(options: {
  secret: string;
  issuer: string;
  audience: string;
  subject: string;
  roles: Role[];
  ttlSeconds: number;
  rolesClaim?: string;
  /** Backdates iat/exp (tests of expiry). */
  now?: number;
}): Promise<string> {
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  return new SignJWT({ [options.rolesClaim ?? "roles"]: options.roles })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setSubject(options.subject)
    .setIssuedAt(now)
    .setExpirationTime(now + options.ttlSeconds)
    .sign(secretKey(options.secret));
}

/** A verification failure turned into a reason a client can act on (never containing the token). */
function explain(
  error: unknown,
  what: "token" | "stream token" | "upload ticket",
  expected: { issuer: string; audience: string; algorithms: string[] },
): Error {
  if (error instanceof errors.JWTExpired) {
    const exp = typeof error.payload.exp === "number" ? ` at ${new Date(error.payload.exp * 1000).toISOString()}` : "";
    return new UnauthenticatedError(`The ${what} expired${exp}; get a new one`, "invalid_token", { cause: error });
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return new UnauthenticatedError(`The ${what}'s signing algorithm is not accepted (accepted: ${expected.algorithms.join(", ")})`, "invalid_token", {
      cause: error,
    });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new UnauthenticatedError(`The ${what}'s signature does not verify with the gateway's key (signed with another key?)`, "invalid_token", {
      cause: error,
    });
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return new UnauthenticatedError(`No key of the configured JWKS matches the ${what} (unknown kid or key type)`, "invalid_token", { cause: error });
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const want = error.claim === "iss" ? ` (expected issuer "${expected.issuer}")` : error.claim === "aud" ? ` (expected audience "${expected.audience}")` : "";
    return new UnauthenticatedError(`The ${what}'s "${error.claim}" claim is not accepted: ${error.reason}${want}`, "invalid_token", { cause: error });
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return new UnauthenticatedError(`The ${what} is malformed: ${(error as Error).message}`, "invalid_token", { cause: error });
  }
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || !(error instanceof errors.JOSEError)) {
    return new KeySourceUnavailableError(`Cannot check the ${what}: the signing keys are unavailable (${(error as Error).message})`, { cause: error });
  }
  return new UnauthenticatedError(`The ${what} is not accepted: ${(error as Error).message}`, "invalid_token", { cause: error });
}

/** The JWKS could not be fetched or parsed: the gateway cannot judge any token right now (503, not 401). */
export class KeySourceUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KeySourceUnavailableError";
  }
}

export interface TokenService {
  /** Verifies a bearer token (explicit algorithms, issuer, audience, exp required) and returns who it is. */
  verifyBearer(token: string): Promise<Principal>;
  /** A short-lived token that opens one pipeline's event stream (EventSource cannot send headers). */
  mintStreamToken(subject: string, pipelineId: string): Promise<{ token: string; expiresAt: Date }>;
  /** Verifies a stream token for this pipeline and returns its subject (a viewer of that stream only). */
  verifyStreamToken(token: string, pipelineId: string): Promise<Principal>;
  /**
   * A signed record the gateway hands a client for an upload in progress (what was declared, where it goes) and
   * reads back when the client continues it: the client cannot change it, and only `subject` can use it.
   */
  mintUploadTicket(subject: string, claims: Record<string, string | number>, ttlSeconds: number): Promise<{ token: string; expiresAt: Date }>;
  /** The claims of an upload ticket minted for `subject`; UnauthenticatedError with the reason for anything else. */
  verifyUploadTicket(token: string, subject: string): Promise<Record<string, unknown>>;
  /** Which key source verifies bearer tokens (for the start-up log). */
  readonly keySource: "secret" | "jwks";
  readonly algorithms: string[];
}

export function createTokenService(config: AuthConfig): TokenService {
  checkSecret(config.secret);
  if (config.audience === STREAM_AUDIENCE) throw new AuthConfigError(`AUTH_AUDIENCE must not be "${STREAM_AUDIENCE}" (the stream tokens' audience)`);
  if (config.audience === UPLOAD_AUDIENCE) throw new AuthConfigError(`AUTH_AUDIENCE must not be "${UPLOAD_AUDIENCE}" (the upload tickets' audience)`);
  const algorithms = config.algorithms?.length ? config.algorithms : config.jwksUrl ? JWKS_ALGORITHMS : ["HS256"];
  if (algorithms.some((alg) => alg.toLowerCase() === "none")) throw new AuthConfigError('AUTH_ALGORITHMS must not contain "none"');
  if (config.jwksUrl && algorithms.some((alg) => alg.startsWith("HS"))) {
    throw new AuthConfigError("AUTH_ALGORITHMS with a JWKS URL must be asymmetric (RS256, ES256, ...): an HS* key in a public JWKS is a shared secret");
  }
  const key = secretKey(config.secret);
  const bearerKey: Uint8Array | JWTVerifyGetKey = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 })
    : key;
  const clockTolerance = config.clockToleranceSeconds ?? 5;
  const rolesClaim = config.rolesClaim ?? "roles";
  const ttl = config.streamTokenTtlSeconds ?? 60;
  const bearerExpect = { issuer: config.issuer, audience: config.audience, algorithms };
  const streamExpect = { issuer: STREAM_ISSUER, audience: STREAM_AUDIENCE, algorithms: ["HS256"] };
  const uploadExpect = { issuer: STREAM_ISSUER, audience: UPLOAD_AUDIENCE, algorithms: ["HS256"] };

  // jose checks that `sub` is present, not what it is: a number or an object would reach every use of the subject.
  const subjectOf = (payload: JWTPayload, what: "token" | "stream token") => {
    if (typeof payload.sub !== "string" || payload.sub.length === 0) {
      throw new UnauthenticatedError(
        `The ${what}'s "sub" claim must be a non-empty string (got ${payload.sub === "" ? "an empty string" : typeof payload.sub})`,
        "invalid_token",
      );
    }
    return payload.sub;
  };

  return {
    keySource: config.jwksUrl ? "jwks" : "secret",
    algorithms,
    async verifyBearer(token) {
      let payload: JWTPayload;
      try {
        const options = { ...bearerExpect, clockTolerance, requiredClaims: ["exp", "sub"] };
        // Two calls rather than a union argument: jose types the key and the key resolver separately.
        ({ payload } = typeof bearerKey === "function" ? await jwtVerify(token, bearerKey, options) : await jwtVerify(token, bearerKey, options));
      } catch (error) {
        throw explain(error, "token", bearerExpect);
      }
      return { subject: subjectOf(payload, "token"), roles: rolesFromClaim(readClaim(payload, rolesClaim)) };
    },
    async mintStreamToken(subject, pipelineId) {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ pid: pipelineId })
        .setProtectedHeader({ alg: "HS256", typ: STREAM_TOKEN_TYPE })
        .setIssuer(STREAM_ISSUER)
        .setAudience(STREAM_AUDIENCE)
        .setSubject(subject)
        .setIssuedAt(now)
        .setExpirationTime(now + ttl)
        .sign(key);
      return { token, expiresAt: new Date((now + ttl) * 1000) };
    },
    async verifyStreamToken(token, pipelineId) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key, { ...streamExpect, typ: STREAM_TOKEN_TYPE, clockTolerance, requiredClaims: ["exp", "sub", "pid"] }));
      } catch (error) {
        if (error instanceof errors.JWTClaimValidationFailed && error.claim === "typ") {
          throw new UnauthenticatedError(
            "This is not a stream token (a bearer token does not open the stream): mint one with POST .../events/token",
            "invalid_token",
            { cause: error },
          );
        }
        throw explain(error, "stream token", streamExpect);
      }
      if (payload.pid !== pipelineId) throw new UnauthenticatedError("The stream token was minted for another pipeline");
      return { subject: subjectOf(payload, "stream token"), roles: new Set<Role>(["viewer"]) };
    },
    async mintUploadTicket(subject, claims, ttlSeconds) {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256", typ: UPLOAD_TOKEN_TYPE })
        .setIssuer(STREAM_ISSUER)
        .setAudience(UPLOAD_AUDIENCE)
        .setSubject(subject)
        .setIssuedAt(now)
        .setExpirationTime(now + ttlSeconds)
        .sign(key);
      return { token, expiresAt: new Date((now + ttlSeconds) * 1000) };
    },
    async verifyUploadTicket(token, subject) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key, { ...uploadExpect, typ: UPLOAD_TOKEN_TYPE, clockTolerance, requiredClaims: ["exp", "sub"] }));
      } catch (error) {
        throw explain(error, "upload ticket", uploadExpect);
      }
      if (payload.sub !== subject) throw new UnauthenticatedError("The upload ticket was given to another user: only who started an upload may go on with it");
      return payload;
    },
  };
}

/** A claim by name, or by a dotted path for providers that nest roles (e.g. "realm_access.roles"). */
function readClaim(payload: JWTPayload, path: string): unknown {
  if (path in payload) return payload[path];
  return path.split(".").reduce<unknown>((value, part) => (value && typeof value === "object" ? (value as Record<string, unknown>)[part] : undefined), payload);
}
