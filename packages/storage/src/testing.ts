/**
 * A real S3 API on loopback for tests (s3rver, storing objects in a temp directory): the S3 backend,
 * the lambdas and services started with STORAGE=s3 all talk to it through the real AWS SDK.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import { createS3Storage, type S3Storage } from "./s3";
import { startStrictS3Front } from "./strict-s3";

/** s3rver accepts exactly this key pair. */
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** What a process needs to use this server as its storage (STORAGE=s3 ...). */
  env: Record<string, string>;
  /** A storage on the bucket, optionally under a prefix. */
  storage(prefix?: string): S3Storage;
  /** Ids of multipart uploads the server holds parts of (started, neither completed nor aborted); `strict` only. */
  pendingUploads(): Promise<string[]>;
  close(): Promise<void>;
}

export interface TestS3Options {
  bucket?: string;
  /**
   * Put the checks S3 makes and s3rver 3.7 does not in front of it (strict-s3.ts): presigned signatures and
   * checksums, AbortMultipartUpload, unknown uploads, the parts listed on completion.
   */
  strict?: boolean;
  /** The bucket's CORS configuration (S3's CORSConfiguration XML), for browsers that PUT or GET presigned URLs. */
  cors?: string;
}

export async function startTestS3(options: TestS3Options = {}): Promise<TestS3> {
  const bucket = options.bucket ?? "vp-test";
  const directory = await mkdtemp(join(tmpdir(), "vp-s3rver-"));
  const configs = options.cors ? [options.cors] : undefined;
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs }] });
  const { port } = await server.run();
  const front = options.strict ? await startStrictS3Front({ targetPort: port, directory, bucket, secret: CREDENTIALS.secretAccessKey }) : null;
  const endpoint = `http://127.0.0.1:${front?.port ?? port}`;
  const clients: S3Storage[] = [];
  return {
    endpoint,
    bucket,
    env: {
      STORAGE: "s3",
      S3_BUCKET: bucket,
      S3_ENDPOINT: endpoint,
      S3_FORCE_PATH_STYLE: "true",
      S3_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    },
    storage(prefix) {
      const storage = createS3Storage({ bucket, prefix, endpoint, forcePathStyle: true, region: "us-east-1", credentials: CREDENTIALS });
      clients.push(storage);
      return storage;
    },
    async pendingUploads() {
      if (!front) throw new Error("pendingUploads needs startTestS3({ strict: true })");
      return front.pendingUploads();
    },
    async close() {
      for (const s of clients) s.client.destroy();
      await front?.close();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
