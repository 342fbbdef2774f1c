/**
 * The editor server's sign-in pieces that need no provider: the settings check, the sealed cookies, their
 * attributes, when a token is renewed, what fits in a cookie, and the origin the redirect URIs are made from.
 * The flow itself runs against a real provider in oidc-sign-in.test.ts.
 */
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  cookieOptions,
  dueForRenewal,
  ID_TOKEN_COOKIE,
  OidcConfigError,
  provider,
  renewMarginMs,
  requestOrigin,
  SIGNED_IN_COOKIE,
  type SignedIn,
  SIGN_IN_COOKIE,
  seal,
  signedInCookieValue,
  unseal,
} from "../../web/lib/oidc-server";

const signedIn = (over: Partial<SignedIn> = {}): SignedIn => ({
  accessToken: "access",
  issuedAt: Date.now(),
  expiresAt: Date.now() + 300_000,
  refreshToken: "refresh",
  subject: "ed",
  name: "Ed Editor",
  ...over,
});

describe("the sign-in settings", () => {
  it("refuse to start without a cookie secret of at least 32 bytes, naming the variable", () => {
    process.env.OIDC_ISSUER = "https://idp.example.com";
    process.env.OIDC_CLIENT_ID = "vp-editor";
    delete process.env.OIDC_COOKIE_SECRET;
    expect(() => provider()).toThrow(OidcConfigError);
    expect(() => provider()).toThrow(/OIDC_COOKIE_SECRET is not set/);
    process.env.OIDC_COOKIE_SECRET = "too short";
    expect(() => provider()).toThrow(/OIDC_COOKIE_SECRET must be at least 32 bytes/);
    delete process.env.OIDC_CLIENT_ID;
    process.env.OIDC_COOKIE_SECRET = randomBytes(32).toString("hex");
    expect(() => provider()).toThrow(/OIDC_CLIENT_ID is not set/);
  });
});

describe("the sign-in cookies", () => {
  beforeAll(() => {
    process.env.OIDC_ISSUER = "https://idp.example.com";
    process.env.OIDC_CLIENT_ID = "vp-editor";
    process.env.OIDC_COOKIE_SECRET = randomBytes(32).toString("hex");
  });

  it("open only unaltered, under their own name", () => {
    const sealed = seal(SIGNED_IN_COOKIE, signedIn());
    expect(unseal<SignedIn>(SIGNED_IN_COOKIE, sealed)).toMatchObject({ accessToken: "access", refreshToken: "refresh", name: "Ed Editor" });
    expect(sealed).not.toContain("refresh");
    // Each seal is fresh (a new IV): equal values do not show as equal cookies.
    expect(seal(SIGNED_IN_COOKIE, signedIn({ issuedAt: 1, expiresAt: 2 }))).not.toBe(seal(SIGNED_IN_COOKIE, signedIn({ issuedAt: 1, expiresAt: 2 })));
    const raw = Buffer.from(sealed, "base64url");
    raw[raw.length - 1]! ^= 1;
    expect(unseal(SIGNED_IN_COOKIE, raw.toString("base64url"))).toBeNull();
    // A sign-in cookie's value is not accepted as the signed-in cookie, nor the ID token's.
    expect(unseal(SIGNED_IN_COOKIE, seal(SIGN_IN_COOKIE, signedIn()))).toBeNull();
    expect(unseal(SIGNED_IN_COOKIE, seal(ID_TOKEN_COOKIE, signedIn()))).toBeNull();
    expect(unseal(SIGNED_IN_COOKIE, undefined)).toBeNull();
    expect(unseal(SIGNED_IN_COOKIE, "not-a-cookie")).toBeNull();
  });

  it("are HttpOnly, SameSite=Lax, Secure on https, each on the narrowest path that reads it", () => {
    expect(cookieOptions(SIGNED_IN_COOKIE, "https://editor.example.com")).toEqual({ httpOnly: true, sameSite: "lax", secure: true, path: "/auth" });
    expect(cookieOptions(SIGNED_IN_COOKIE, "http://127.0.0.1:3065").secure).toBe(false);
    expect(cookieOptions(SIGN_IN_COOKIE, "https://editor.example.com", 600)).toMatchObject({ path: "/auth/callback", maxAge: 600 });
    expect(cookieOptions(ID_TOKEN_COOKIE, "https://editor.example.com").path).toBe("/auth/sign-out");
  });

  it("keep the refresh token when the tokens are too large for one cookie, leaving the access token to be renewed", () => {
    expect(unseal<SignedIn>(SIGNED_IN_COOKIE, signedInCookieValue(signedIn()))?.accessToken).toBe("access");
    const big = unseal<SignedIn>(SIGNED_IN_COOKIE, signedInCookieValue(signedIn({ accessToken: "a".repeat(4000) })));
    expect(big).toMatchObject({ accessToken: "", refreshToken: "refresh", name: "Ed Editor" });
    expect(dueForRenewal(big!)).toBe(true);
    expect(() => signedInCookieValue(signedIn({ refreshToken: "r".repeat(4000) }))).toThrow(OidcConfigError);
  });
});

describe("renewal", () => {
  it("renews a minute before expiry, or a third of a short token's lifetime before", () => {
    expect(renewMarginMs(3_600_000)).toBe(60_000);
    expect(renewMarginMs(15_000)).toBe(5_000);
    const now = Date.now();
    const short = signedIn({ issuedAt: now, expiresAt: now + 15_000 });
    expect(dueForRenewal(short, now + 9_000)).toBe(false);
    expect(dueForRenewal(short, now + 10_000)).toBe(true);
    const hour = signedIn({ issuedAt: now, expiresAt: now + 3_600_000 });
    expect(dueForRenewal(hour, now + 3_500_000)).toBe(false);
    expect(dueForRenewal(hour, now + 3_540_000)).toBe(true);
  });
});

describe("requestOrigin", () => {
  it("is the Host the browser sent (and a proxy's X-Forwarded-Proto/-Host), not Next's idea of the server's name", () => {
    const at = (headers: Record<string, string>) => requestOrigin(new Request("http://localhost:3065/auth/sign-in", { headers }));
    expect(at({ host: "127.0.0.1:4000" })).toBe("http://127.0.0.1:4000");
    expect(at({ host: "editor.internal:3065", "x-forwarded-proto": "https", "x-forwarded-host": "editor.example.com" })).toBe("https://editor.example.com");
    expect(at({ host: "editor.example.com", "x-forwarded-proto": "https, http" })).toBe("https://editor.example.com");
    expect(at({ host: "bad host/x" })).toBe("http://localhost:3065");
  });
});
