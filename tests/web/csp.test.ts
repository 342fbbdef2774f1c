/** The editor's Content-Security-Policy as a pure function: the gateway, and the storage origins of presigned output URLs. */
import { describe, expect, it } from "vitest";
import { contentSecurityPolicy, mediaOriginsOf } from "../../web/lib/csp";

const directive = (csp: string, name: string) => csp.split("; ").find((d) => d.startsWith(`${name} `)) ?? "";

describe("contentSecurityPolicy", () => {
  it("lets output media come from the storage origins named in MEDIA_ORIGINS (presigned URLs), and nothing else", () => {
    const csp = contentSecurityPolicy({
      nonce: "n0nce",
      gatewayUrl: "https://api.example.com/v1",
      mediaOrigins: "https://media.s3.eu-west-1.amazonaws.com, javascript:alert(1), not a url, http://minio.local:9000/bucket",
    });
    const media = ["https://media.s3.eu-west-1.amazonaws.com", "http://minio.local:9000"];
    expect(directive(csp, "media-src").split(" ")).toEqual(["media-src", "'self'", "blob:", ...media, "https://api.example.com"]);
    expect(directive(csp, "img-src").split(" ")).toEqual(["img-src", "'self'", "data:", "blob:", ...media, "https://api.example.com"]);
    expect(directive(csp, "connect-src").split(" ")).toEqual(["connect-src", "'self'", ...media, "https://api.example.com"]);
    expect(directive(csp, "script-src")).toBe("script-src 'self' 'nonce-n0nce' 'strict-dynamic'");
  });

  it("without MEDIA_ORIGINS, media come from the editor and the gateway only", () => {
    const csp = contentSecurityPolicy({ nonce: "n", gatewayUrl: "http://localhost:3061" });
    expect(directive(csp, "media-src")).toBe("media-src 'self' blob: http://localhost:3061");
    expect(mediaOriginsOf(undefined)).toEqual([]);
  });
});
