import type { ApiNode, Bearer, Request } from "./api";
import { ApiError } from "./api-error";

/**
 * An asset node's file upload. The gateway is asked first (POST .../asset/uploads, which checks the file's type,
 * size and the quota): with direct uploads on it answers a multipart upload whose parts go from the browser straight
 * to the bucket through presigned URLs (progress per part, a few parts at a time), then completes it; otherwise the
 * file is PUT to the gateway, which streams it to storage.
 */

interface PartUrl {
  number: number;
  size: number;
  url: string;
}

type Started =
  | { delivery: "proxy" }
  | { delivery: "presigned"; upload: string; size: number; part_size: number; part_count: number; parts: PartUrl[]; urls_expire_at: string };
type Direct = Extract<Started, { delivery: "presigned" }>;

/** Parts in flight at once. */
const CONCURRENT_PARTS = 3;
/** Tries per part (a refused or dropped PUT is sent again with a fresh URL). */
const PART_TRIES = 3;
/** A URL this close to its expiry is renewed before a part is sent with it. */
const RENEW_BEFORE_MS = 60_000;

export type UploadProgress = (fraction: number) => void;

interface UploaderDeps {
  root: string;
  gatewayUrl: string;
  request: Request;
  bearer: Bearer;
  nodePath: (pipelineId: string, nodeId: string) => string;
  /** The page's id (X-Vp-Client), so the structure change an upload makes is known as its own. */
  clientId: string;
}

/** The gateway checks the name too: a base name without control characters, at most 255 characters. */
const safeName = (name: string) => name.replace(/[\u0000-\u001f\u007f/\\]/g, "_").slice(0, 255) || "upload";

export function assetUploader(deps: UploaderDeps) {
  return async (pipelineId: string, nodeId: string, file: File, contentType: string, onProgress: UploadProgress): Promise<{ node: ApiNode }> => {
    const asset = `${deps.nodePath(pipelineId, nodeId)}/asset`;
    const started = await deps.request<Started>("POST", `${asset}/uploads`, { name: safeName(file.name), content_type: contentType, size: file.size });
    if (started.delivery === "presigned") return sendToBucket(deps, asset, file, started, onProgress);
    return putThroughGateway(deps, asset, file, contentType, onProgress);
  };
}

/** PUT the raw file with upload progress (fetch has none), streamed to storage by the gateway. */
async function putThroughGateway(deps: UploaderDeps, asset: string, file: File, contentType: string, onProgress: UploadProgress): Promise<{ node: ApiNode }> {
  const authorization = await deps.bearer();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    // The name is kept with the asset for the editor to show (the gateway checks it as it checks a direct upload's).
    xhr.open("PUT", `${deps.root}${asset}?${new URLSearchParams({ name: safeName(file.name) })}`);
    xhr.setRequestHeader("content-type", contentType);
    xhr.setRequestHeader("x-vp-client", deps.clientId);
    if (authorization.authorization) xhr.setRequestHeader("authorization", authorization.authorization);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let payload: { error?: string; node?: ApiNode } | undefined;
      try {
        payload = JSON.parse(xhr.responseText);
      } catch {
        payload = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300 && payload?.node) resolve({ node: payload.node });
      else reject(new ApiError(xhr.status, payload?.error ?? `Upload failed with ${xhr.status}`));
    };
    xhr.onerror = () => reject(new ApiError(0, `Cannot reach the gateway at ${deps.gatewayUrl} to upload ${file.name}`));
    xhr.send(file);
  });
}

/** S3's reason from its XML error answer (Code and Message), or the status. */
function storageReason(status: number, body: string): string {
  const code = /<Code>([^<]{1,100})<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]{1,300})<\/Message>/.exec(body)?.[1];
  return code ? `${code}${message ? `: ${message}` : ""}` : `HTTP ${status}`;
}

/** One part PUT to its presigned URL; the ETag S3 answered (the bucket's CORS rule must expose it). */
function putPart(url: string, body: Blob, onLoaded: (bytes: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (event) => onLoaded(event.loaded);
    xhr.onload = () => {
      const etag = xhr.getResponseHeader("etag");
      if (xhr.status >= 200 && xhr.status < 300 && etag) resolve(etag);
      else if (xhr.status >= 200 && xhr.status < 300) {
        reject(new ApiError(0, "The storage took the part but its answer shows no ETag: the bucket's CORS rule must expose the ETag header"));
      } else reject(new ApiError(xhr.status, `The storage refused the part (${storageReason(xhr.status, xhr.responseText)})`));
    };
    xhr.onerror = () => reject(new ApiError(0, `Cannot reach the storage at ${new URL(url).origin} (is the bucket's CORS rule set for this editor's origin?)`));
    xhr.send(body);
  });
}

/**
 * The parts of `file` straight to the bucket, then the completion. Part URLs close to their expiry are renewed
 * (POST .../uploads/parts); a part is tried up to PART_TRIES times. Whatever fails aborts the upload, and so does
 * leaving the page while it runs; an abort that never arrives is left to the bucket's lifecycle rule.
 */
async function sendToBucket(deps: UploaderDeps, asset: string, file: File, started: Direct, onProgress: UploadProgress): Promise<{ node: ApiNode }> {
  const { upload } = started;
  const urls = new Map<number, PartUrl & { expiresAt: number }>();
  const remember = (parts: PartUrl[], expires: string) => {
    for (const part of parts) urls.set(part.number, { ...part, expiresAt: Date.parse(expires) });
  };
  remember(started.parts, started.urls_expire_at);
  let renewing: Promise<void> | null = null;
  async function urlFor(number: number): Promise<PartUrl> {
    for (;;) {
      const known = urls.get(number);
      if (known && known.expiresAt - RENEW_BEFORE_MS > Date.now()) return known;
      renewing ??= (async () => {
        const wanted = Array.from({ length: Math.min(100, started.part_count - number + 1) }, (_, i) => number + i);
        const fresh = await deps.request<{ parts: PartUrl[]; urls_expire_at: string }>("POST", `${asset}/uploads/parts`, { upload, parts: wanted });
        remember(fresh.parts, fresh.urls_expire_at);
      })().finally(() => {
        renewing = null;
      });
      await renewing;
      const renewed = urls.get(number);
      if (renewed && renewed.expiresAt > Date.now()) return renewed;
    }
  }

  const sent = new Map<number, number>();
  const report = () => onProgress([...sent.values()].reduce((a, b) => a + b, 0) / file.size);
  async function sendPart(number: number): Promise<{ number: number; etag: string }> {
    const from = (number - 1) * started.part_size;
    for (let attempt = 1; ; attempt++) {
      const part = await urlFor(number);
      try {
        const etag = await putPart(part.url, file.slice(from, from + part.size), (bytes) => {
          sent.set(number, bytes);
          report();
        });
        sent.set(number, part.size);
        report();
        return { number, etag };
      } catch (error) {
        sent.set(number, 0);
        if (attempt >= PART_TRIES) throw error;
        urls.delete(number);
      }
    }
  }

  const authorization = await deps.bearer();
  const abortUrl = `${deps.root}${asset}/uploads/abort`;
  const abortBody = JSON.stringify({ upload });
  // Leaving the page mid-upload: the abort goes out with the page (keepalive), so the parts do not wait a day.
  const onLeave = () => {
    void fetch(abortUrl, { method: "POST", keepalive: true, headers: { ...authorization, "content-type": "application/json" }, body: abortBody }).catch(
      () => {},
    );
  };
  window.addEventListener("pagehide", onLeave);
  try {
    const etags: Array<{ number: number; etag: string }> = [];
    let next = 1;
    let failure: { error: unknown } | null = null;
    // A few parts at a time; after a failure no new part starts.
    const worker = async () => {
      while (!failure && next <= started.part_count) {
        try {
          etags.push(await sendPart(next++));
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENT_PARTS, started.part_count) }, worker));
    if (failure) throw (failure as { error: unknown }).error;
    etags.sort((a, b) => a.number - b.number);
    return await deps.request<{ node: ApiNode }>("POST", `${asset}/uploads/complete`, { upload, parts: etags });
  } catch (error) {
    await deps.request("POST", `${asset}/uploads/abort`, { upload }).catch(() => {});
    throw error;
  } finally {
    window.removeEventListener("pagehide", onLeave);
  }
}
