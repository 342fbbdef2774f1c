import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { AuthConfigError, UnauthenticatedError } from "./errors";
import { rolesFromClaim } from "./roles";
import { createTokenService, generateSecret, signAccessToken, STREAM_AUDIENCE, UPLOAD_AUDIENCE } from "./tokens";

const secret = generateSecret();
const config = { issuer: "iss-test", audience: "aud-test", secret };
const sign = (over: Partial<Parameters<typeof signAccessToken>[0]> = {}) =>
  signAccessToken({ secret, issuer: "iss-test", audience: "aud-test", subject: "u1", roles: ["editor"], ttlSeconds: 60, ...over });

describe("rolesFromClaim", () => {
  it("reads arrays and space/comma-separated strings, ignores unknown names, and adds viewer to any role", () => {
    expect([...rolesFromClaim(["operator", "admin"])].sort()).toEqual(["operator", "viewer"]);
    expect([...rolesFromClaim("editor operator")].sort()).toEqual(["editor", "operator", "viewer"]);
    expect([...rolesFromClaim("viewer,editor")].sort()).toEqual(["editor", "viewer"]);
    expect(rolesFromClaim(["admin"]).size).toBe(0);
    expect(rolesFromClaim(undefined).size).toBe(0);
    expect(rolesFromClaim({ roles: ["editor"] }).size).toBe(0);
  });
});

describe("createTokenService", () => {
  it("verifies its own HS256 tokens: subject and roles", async () => {
    const tokens = createTokenService(config);
    expect(await tokens.verifyBearer(await sign())).toEqual({ subject: "u1", roles: new Set(["editor", "viewer"]) });
    expect(tokens.algorithms).toEqual(["HS256"]);
  });

  it("tolerates a few seconds of clock skew, no more", async () => {
    const tokens = createTokenService({ ...config, clockToleranceSeconds: 5 });
    await expect(tokens.verifyBearer(await sign({ ttlSeconds: 60, now: Date.now() - 62_000 }))).resolves.toMatchObject({ subject: "u1" });
    await expect(tokens.verifyBearer(await sign({ ttlSeconds: 60, now: Date.now() - 70_000 }))).rejects.toThrow(/expired/);
  });

  it("refuses a bearer token whose sub is not a non-empty string (a number, an object, empty) as unauthenticated", async () => {
    const tokens = createTokenService(config);
    const now = Math.floor(Date.now() / 1000);
    for (const sub of [42, { id: "u1" }, ["u1"], true, ""]) {
      const token = await new SignJWT({ roles: ["viewer"], sub } as Record<string, unknown>)
        .setProtectedHeader({ alg: "HS256" })
        .setIssuer("iss-test")
        .setAudience("aud-test")
        .setExpirationTime(now + 600)
        .sign(new TextEncoder().encode(secret));
      const verdict = tokens.verifyBearer(token);
      await expect(verdict, JSON.stringify(sub)).rejects.toThrow(UnauthenticatedError);
      await expect(verdict, JSON.stringify(sub)).rejects.toThrow(/"sub" claim must be a non-empty string/);
    }
  });

  it("refuses a token that is not valid yet (nbf)", async () => {
    const tokens = createTokenService(config);
    const now = Math.floor(Date.now() / 1000);
    const early = await new SignJWT({ roles: ["viewer"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("iss-test")
      .setAudience("aud-test")
      .setSubject("u1")
      .setNotBefore(now + 600)
      .setExpirationTime(now + 1200)
      .sign(new TextEncoder().encode(secret));
    await expect(tokens.verifyBearer(early)).rejects.toThrow(UnauthenticatedError);
    await expect(tokens.verifyBearer(early)).rejects.toThrow(/"nbf" claim/);
  });

  it("reads roles from a configured (nested) claim", async () => {
    const tokens = createTokenService({ ...config, rolesClaim: "realm_access.roles" });
    const token = await new SignJWT({ realm_access: { roles: ["operator"] } })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("iss-test")
      .setAudience("aud-test")
      .setSubject("u2")
      .setExpirationTime("1m")
      .sign(new TextEncoder().encode(secret));
    expect([...(await tokens.verifyBearer(token)).roles].sort()).toEqual(["operator", "viewer"]);
  });

  it("mints stream tokens scoped to one pipeline that are no bearer tokens", async () => {
    const tokens = createTokenService({ ...config, streamTokenTtlSeconds: 30 });
    const { token, expiresAt } = await tokens.mintStreamToken("u1", "p1");
    expect(expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(30_000);
    expect(await tokens.verifyStreamToken(token, "p1")).toEqual({ subject: "u1", roles: new Set(["viewer"]) });
    await expect(tokens.verifyStreamToken(token, "p2")).rejects.toThrow(/another pipeline/);
    await expect(tokens.verifyBearer(token)).rejects.toThrow(UnauthenticatedError);
  });

  it("mints upload tickets only their subject can use, that are neither bearer nor stream tokens", async () => {
    const tokens = createTokenService(config);
    const { token, expiresAt } = await tokens.mintUploadTicket("u1", { key: "pipelines/p/nodes/n/asset/x.mp4", size: 42 }, 120);
    expect(expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(120_000);
    expect(await tokens.verifyUploadTicket(token, "u1")).toMatchObject({ key: "pipelines/p/nodes/n/asset/x.mp4", size: 42, sub: "u1" });
    await expect(tokens.verifyUploadTicket(token, "u2")).rejects.toThrow(/another user/);
    await expect(tokens.verifyBearer(token)).rejects.toThrow(UnauthenticatedError);
    await expect(tokens.verifyStreamToken(token, "p")).rejects.toThrow(UnauthenticatedError);
    const stream = (await tokens.mintStreamToken("u1", "p")).token;
    await expect(tokens.verifyUploadTicket(stream, "u1")).rejects.toThrow(UnauthenticatedError);
    await expect(tokens.verifyUploadTicket(await sign(), "u1")).rejects.toThrow(UnauthenticatedError);
    const foreign = createTokenService({ ...config, secret: generateSecret() });
    await expect(foreign.verifyUploadTicket(token, "u1")).rejects.toThrow(/signature/);
  });

  it("refuses configurations that cannot be safe", () => {
    expect(() => createTokenService({ ...config, secret: "x".repeat(31) })).toThrow(AuthConfigError);
    expect(() => createTokenService({ ...config, algorithms: ["HS256", "none"] })).toThrow(/"none"/);
    expect(() => createTokenService({ ...config, jwksUrl: "https://idp.example/jwks", algorithms: ["HS256"] })).toThrow(/asymmetric/);
    expect(() => createTokenService({ ...config, audience: STREAM_AUDIENCE })).toThrow(/stream tokens' audience/);
    expect(() => createTokenService({ ...config, audience: UPLOAD_AUDIENCE })).toThrow(/upload tickets' audience/);
    expect(createTokenService({ ...config, jwksUrl: "https://idp.example/jwks" }).algorithms).toEqual(["RS256", "ES256"]);
  });
});
