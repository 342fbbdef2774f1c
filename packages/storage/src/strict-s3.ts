/**
 * A front for s3rver (tests only) that answers as S3 does where s3rver 3.7 does not, so tests of presigned uploads
 * can fail for the reasons S3 would refuse them:
 *
 * - presigned (query) requests: s3rver checks their expiry but not their SigV4 signature; the front recomputes it,
 *   so a URL used for another key, part, method or body length is refused (403 SignatureDoesNotMatch);
 * - a CRC32 checksum named in a presigned URL is checked against the body (400 BadDigest), as S3 does;
 * - multipart uploads: s3rver has no AbortMultipartUpload (405) and takes parts and completions for uploads that do
 *   not exist; its completion ignores the listed ETags and part sizes. The front answers NoSuchUpload (404) for an
 *   unknown upload, aborts by deleting s3rver's stored parts, and refuses a completion whose parts are out of order
 *   (InvalidPartOrder), missing or of another ETag (InvalidPart), or under 5 MiB but the last (EntityTooSmall).
 *
 * Everything else goes to s3rver unchanged. It relies on s3rver's file layout (uploads under
 * `<directory>/<bucket>/._S3rver_uploads/<uploadId>/`: a `key` file, and per part `<n>` and `<n>.md5`).
 */
import { createHash, createHmac } from "node:crypto";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import http from "node:http";
import { join } from "node:path";
import { crc32 } from "node:zlib";

const MIN_PART = 5 * 1024 * 1024;

export interface StrictS3Front {
  port: number;
  /** Ids of the multipart uploads s3rver holds (started, neither completed nor aborted). */
  pendingUploads(): Promise<string[]>;
  close(): Promise<void>;
}

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
const hmac = (key: string | Buffer, s: string) => createHmac("sha256", key).update(s, "utf8").digest();

/** Why this presigned request's SigV4 signature is not the one `secret` gives, or null when it is. */
export function presignedSignatureProblem(method: string, rawUrl: string, headers: http.IncomingHttpHeaders, secret: string): string | null {
  const [path = "/", query = ""] = rawUrl.split("?", 2);
  const pairs = query
    .split("&")
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf("=");
      const [k, v] = at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
      return [decodeURIComponent(k), decodeURIComponent(v)] as const;
    });
  const param = (name: string) => pairs.find(([k]) => k === name)?.[1];
  const [date, region, service, terminator] = (param("X-Amz-Credential") ?? "").split("/").slice(1);
  const amzDate = param("X-Amz-Date");
  const signedHeaders = (param("X-Amz-SignedHeaders") ?? "").split(";").filter(Boolean);
  if (!date || !region || !service || terminator !== "aws4_request" || !amzDate || !signedHeaders.includes("host")) {
    return "the presigned URL lacks a credential scope, a date or a signed host";
  }
  const canonicalQuery = pairs
    .filter(([k]) => k !== "X-Amz-Signature")
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort(([a = "", x = ""], [b = "", y = ""]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonicalHeaders = signedHeaders
    .map(
      (name) =>
        `${name}:${String(headers[name] ?? "")
          .trim()
          .replace(/\s+/g, " ")}\n`,
    )
    .join("");
  const canonical = [method, path, canonicalQuery, canonicalHeaders, signedHeaders.join(";"), param("X-Amz-Content-Sha256") ?? "UNSIGNED-PAYLOAD"].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
  const expected = hmac(key, ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n")).toString("hex");
  return expected === param("X-Amz-Signature") ? null : `the signature does not match this request (signed headers: ${signedHeaders.join(", ")})`;
}

function s3Error(res: http.ServerResponse, status: number, code: string, message: string) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) }).end(body);
}

async function readAll(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** What S3 would refuse in a CompleteMultipartUpload body for the parts stored in `dir`, or null. */
async function completionProblem(dir: string, xml: string): Promise<{ code: string; message: string } | null> {
  const parts = [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
    number: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1]!)?.[1]),
    etag: (/<ETag>([\s\S]*?)<\/ETag>/.exec(m[1]!)?.[1] ?? "").replace(/&quot;|"/g, ""),
  }));
  if (!parts.length) return { code: "MalformedXML", message: "The completion lists no part" };
  for (let i = 1; i < parts.length; i++) {
    if (!(parts[i]!.number > parts[i - 1]!.number)) return { code: "InvalidPartOrder", message: "The list of parts was not in ascending order" };
  }
  for (const [i, part] of parts.entries()) {
    const stored = join(dir, String(part.number));
    const md5 = await readFile(`${stored}.md5`, "utf8").catch(() => null);
    if (md5 === null || md5 !== part.etag) {
      return { code: "InvalidPart", message: `Part ${part.number} was not uploaded, or its ETag is not the one given` };
    }
    if (i < parts.length - 1 && (await stat(stored)).size < MIN_PART) {
      return { code: "EntityTooSmall", message: `Part ${part.number} is smaller than the minimum allowed size` };
    }
  }
  return null;
}

/** Starts the front on a free loopback port, forwarding to s3rver on `targetPort`; `secret` is s3rver's key. */
export async function startStrictS3Front(options: { targetPort: number; directory: string; bucket: string; secret: string }): Promise<StrictS3Front> {
  const uploadsDir = join(options.directory, options.bucket, "._S3rver_uploads");
  // Requests to s3rver in flight: a client that goes away (a video player seeking) takes its upstream with it, and
  // close() ends the rest, so s3rver's own close never waits on a response nobody reads.
  const upstreams = new Set<http.ClientRequest>();
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body?: Buffer) => {
    const { connection: _hopByHop, ...headers } = req.headers;
    const upstream = http.request({ host: "127.0.0.1", port: options.targetPort, method: req.method, path: req.url, headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstreams.add(upstream);
    upstream.on("close", () => upstreams.delete(upstream));
    res.on("close", () => upstream.destroy());
    upstream.on("error", (error) => {
      if (!res.headersSent) s3Error(res, 502, "InternalError", error.message);
    });
    if (body) upstream.end(body);
    else req.pipe(upstream);
  };

  const server = http.createServer(async (req, res) => {
    try {
      const rawUrl = req.url ?? "/";
      const query = new URL(rawUrl, "http://front").searchParams;
      let body: Buffer | undefined;
      // CORS preflights carry the presigned query but no signature of their own (S3 answers them from the CORS rule).
      if (req.method === "OPTIONS") return forward(req, res);
      if (query.has("X-Amz-Signature")) {
        const problem = presignedSignatureProblem(req.method ?? "GET", rawUrl, req.headers, options.secret);
        if (problem) return s3Error(res, 403, "SignatureDoesNotMatch", `The request signature we calculated does not match: ${problem}`);
        const checksum = query.get("x-amz-checksum-crc32");
        if (checksum !== null) {
          body = await readAll(req);
          const actual = Buffer.alloc(4);
          actual.writeUInt32BE(crc32(body));
          if (actual.toString("base64") !== checksum) return s3Error(res, 400, "BadDigest", "The CRC32 you specified did not match the calculated checksum");
        }
      }
      const uploadId = query.get("uploadId");
      if (uploadId !== null && req.method !== "GET") {
        const dir = join(uploadsDir, /^[0-9a-f]{1,64}$/.test(uploadId) ? uploadId : "-");
        if (!(await exists(join(dir, "key")))) return s3Error(res, 404, "NoSuchUpload", "The specified upload does not exist");
        if (req.method === "DELETE") {
          await rm(dir, { recursive: true, force: true });
          return res.writeHead(204).end();
        }
        if (req.method === "POST") {
          body = await readAll(req);
          const problem = await completionProblem(dir, body.toString("utf8"));
          if (problem) return s3Error(res, 400, problem.code, problem.message);
        }
      }
      forward(req, res, body);
    } catch (error) {
      s3Error(res, 500, "InternalError", (error as Error).message);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    pendingUploads: async () => {
      const ids = await readdir(uploadsDir).catch(() => [] as string[]);
      const started = await Promise.all(ids.map((id) => exists(join(uploadsDir, id, "key"))));
      return ids.filter((_, i) => started[i]);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const upstream of upstreams) upstream.destroy();
      }),
  };
}
