/**
 * A real OpenID Connect provider for the sign-in tests: oidc-provider (the certified Node implementation) with
 * its own login and consent pages, one registered client (the editor), users with roles, JWT access tokens for
 * the gateway's audience carrying a `roles` claim, refresh tokens, revocation and RP-initiated logout.
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer, type Server } from "node:http";
import Provider, { type KoaContextWithOIDC } from "oidc-provider";

export interface TestUser {
  name: string;
  /** The roles claim the gateway maps (AUTH_ROLES_CLAIM, default "roles"). */
  roles: string[];
}

export interface IdentityProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The audience of the access tokens (the gateway's AUTH_AUDIENCE). */
  audience: string;
  /** Grants at the token endpoint, by grant type, as they succeeded. */
  grants: string[];
  /** RP-initiated logouts that completed. */
  signOuts: number;
  /** Refresh tokens revoked at the revocation endpoint. */
  revocations: number;
  stop(): Promise<void>;
}

/**
 * Listens on `port` (so the gateway and the editor can be told the issuer before it runs) and registers the editor
 * at `editorUrl`: its callback and post-logout URIs, as an operator would at their provider.
 */
export async function startIdentityProvider(options: {
  port: number;
  editorUrl: string;
  users: Record<string, TestUser>;
  accessTokenTtlSeconds: number;
}): Promise<IdentityProvider> {
  const issuer = `http://127.0.0.1:${options.port}`;
  const clientId = "vp-editor";
  const clientSecret = "editor-client-secret-for-the-sign-in-test";
  const audience = "vp-api";
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "test-key", alg: "RS256", use: "sig" };
  const user = (id: string) => options.users[id];

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        token_endpoint_auth_method: "client_secret_post",
        redirect_uris: [`${options.editorUrl}/auth/callback`],
        post_logout_redirect_uris: [`${options.editorUrl}/auth/signed-out`],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: ["identity-provider-cookie-key-for-tests"] },
    pkce: { required: () => true },
    claims: { openid: ["sub"], profile: ["name", "preferred_username"] },
    // The name goes into the ID token, as most providers do (the editor shows it from there).
    conformIdTokenClaims: false,
    async findAccount(_ctx, id) {
      const found = user(id);
      if (!found) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, name: found.name, preferred_username: id }) };
    },
    features: {
      // The provider's own login and consent pages (any password; the login names the user).
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      // Access tokens are JWTs for the gateway's audience, verified there through this provider's JWKS.
      resourceIndicators: {
        enabled: true,
        defaultResource: () => "urn:vp-api",
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "openid profile offline_access",
          audience,
          accessTokenTTL: options.accessTokenTtlSeconds,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
    async extraTokenClaims(_ctx, token) {
      if (token.kind !== "AccessToken" || !("accountId" in token) || typeof token.accountId !== "string") return undefined;
      return { roles: user(token.accountId)?.roles ?? [] };
    },
    // The editor asks for offline_access; this provider issues the refresh token without a separate consent prompt.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    ttl: { AccessToken: options.accessTokenTtlSeconds, IdToken: 3600, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
  });

  const state = { grants: [] as string[], signOuts: 0, revocations: 0 };
  provider.on("grant.success", (ctx: KoaContextWithOIDC) => state.grants.push(String(ctx.oidc.params?.grant_type)));
  provider.on("end_session.success", () => state.signOuts++);
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === "/token/revocation" && ctx.status === 200) state.revocations++;
  });

  const server: Server = createServer(provider.callback());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", resolve);
  });
  return {
    issuer,
    clientId,
    clientSecret,
    audience,
    get grants() {
      return state.grants;
    },
    get signOuts() {
      return state.signOuts;
    },
    get revocations() {
      return state.revocations;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
