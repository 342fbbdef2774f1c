/**
 * The editor's Content-Security-Policy. Scripts: Next's own, by a per-request nonce ('strict-dynamic' lets them
 * load their chunks). Network: the editor's origin and the gateway (REST, SSE, output media). Styles allow
 * inline because React Flow and CodeMirror set style attributes and elements. No framing, plugins or base
 * rewriting. `dev`: next dev also needs eval (React's debugging) and its HMR websocket.
 */
export function contentSecurityPolicy(options: { nonce: string; gatewayUrl: string; dev?: boolean; mediaOrigins?: string }): string {
  const gateway = originOf(options.gatewayUrl);
  const sources = (...extra: string[]) => ["'self'", ...extra, ...(gateway ? [gateway] : [])].join(" ");
  // The bucket: where outputs come from when the gateway redirects to presigned URLs (OUTPUT_DELIVERY=presigned), and
  // where the editor sends upload parts (UPLOAD_DELIVERY=presigned; connect-src covers its PUTs).
  const media = mediaOriginsOf(options.mediaOrigins);
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${options.nonce}' 'strict-dynamic'${options.dev ? " 'unsafe-eval'" : ""}`,
    "style-src 'self' 'unsafe-inline'",
    `connect-src ${sources(...(options.dev ? ["ws:", "wss:"] : []), ...media)}`,
    `img-src ${sources("data:", "blob:", ...media)}`,
    `media-src ${sources("blob:", ...media)}`,
    "font-src 'self' data:",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** MEDIA_ORIGINS: comma-separated http(s) origins (the bucket's, for presigned outputs and uploads); anything else is dropped, never put into the policy. */
export function mediaOriginsOf(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean)
    .map((v) => originOf(v))
    .filter((o): o is string => o !== null);
}

/** The origin of the gateway URL (what CSP matches); null for a URL that is not http(s). */
export function originOf(url: string): string | null {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.origin : null;
  } catch {
    return null;
  }
}
