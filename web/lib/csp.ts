/**
 * The editor's Content-Security-Policy. Scripts: Next's own, by a per-request nonce ('strict-dynamic' lets them
 * load their chunks). Network: the editor's origin and the gateway (REST, SSE, output media). Styles allow
 * inline because React Flow and CodeMirror set style attributes and elements. No framing, plugins or base
 * rewriting. `dev`: next dev also needs eval (React's debugging) and its HMR websocket.
 */
export function contentSecurityPolicy(options: { nonce: string; gatewayUrl: string; dev?: boolean }): string {
  const gateway = originOf(options.gatewayUrl);
  const sources = (...extra: string[]) => ["'self'", ...extra, ...(gateway ? [gateway] : [])].join(" ");
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${options.nonce}' 'strict-dynamic'${options.dev ? " 'unsafe-eval'" : ""}`,
    "style-src 'self' 'unsafe-inline'",
    `connect-src ${sources(...(options.dev ? ["ws:", "wss:"] : []))}`,
    `img-src ${sources("data:", "blob:")}`,
    `media-src ${sources("blob:")}`,
    "font-src 'self' data:",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
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
