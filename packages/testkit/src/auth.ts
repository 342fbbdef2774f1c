import { ALL_ROLES, generateSecret, signAccessToken, type Role } from "@vp/auth";

/**
 * The auth settings every gateway started by the testkit gets (startStack), and the key test tokens are
 * signed with: a fresh secret per test process, so no token outlives the run.
 */
export const TEST_AUTH = {
  secret: process.env.VP_TEST_AUTH_SECRET ?? generateSecret(),
  issuer: "vp-test",
  audience: "vp-api",
} as const;

/** The gateway environment matching TEST_AUTH. */
export const testAuthEnv = (): Record<string, string> => ({
  AUTH_MODE: "jwt",
  AUTH_SECRET: TEST_AUTH.secret,
  AUTH_ISSUER: TEST_AUTH.issuer,
  AUTH_AUDIENCE: TEST_AUTH.audience,
});

const cache = new Map<string, Promise<string>>();

/**
 * A bearer token for the test gateway with the given role(s) (default: all three). Cached per role set;
 * valid for two hours, longer than any test file.
 */
export function testToken(roles: Role | Role[] = ALL_ROLES, options: { subject?: string; ttlSeconds?: number; now?: number } = {}): Promise<string> {
  const list = Array.isArray(roles) ? roles : [roles];
  const make = () =>
    signAccessToken({
      secret: TEST_AUTH.secret,
      issuer: TEST_AUTH.issuer,
      audience: TEST_AUTH.audience,
      subject: options.subject ?? `test-${list.join("-")}`,
      roles: list,
      ttlSeconds: options.ttlSeconds ?? 2 * 3600,
      now: options.now,
    });
  if (options.subject || options.ttlSeconds || options.now) return make();
  const key = [...list].sort().join(",");
  let token = cache.get(key);
  if (!token) cache.set(key, (token = make()));
  return token;
}

/** `{ authorization: "Bearer …" }` for fetch calls to the test gateway (default: all roles). */
export async function authHeader(roles: Role | Role[] = ALL_ROLES): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await testToken(roles)}` };
}
