/**
 * A real S3 API on loopback for tests (s3rver, storing objects in a temp directory): the S3 backend,
 * the lambdas and services started with STORAGE=s3 all talk to it through the real AWS SDK.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import { createS3Storage, type S3Storage } from "./s3";

/** s3rver accepts exactly this key pair. */
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** What a process needs to use this server as its storage (STORAGE=s3 ...). */
  env: Record<string, string>;
  /** A storage on the bucket, optionally under a prefix. */
  storage(prefix?: string): S3Storage;
  close(): Promise<void>;
}

export async function startTestS3(options: { bucket?: string } = {}): Promise<TestS3> {
  const bucket = options.bucket ?? "vp-test";
  const directory = await mkdtemp(join(tmpdir(), "vp-s3rver-"));
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
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
    async close() {
      for (const s of clients) s.client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
