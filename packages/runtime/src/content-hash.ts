import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Storage } from "@vp/storage";

/**
 * Content hashes of outputs: an output's sha256 enters its dependants' cache keys, so the same bytes
 * made in another pipeline or run hit the cache. The job runner hands work functions a storage that hashes
 * what they store on the way in (no second read); an output stored some other way (an uploaded asset used in
 * place, a Lambda's upload) is hashed by streaming it back once.
 */
export function hashingStorage(storage: Storage): { storage: Storage; hashOf(key: string): Promise<string>; written(): string[] } {
  const hashes = new Map<string, Promise<string>>();
  const wrapped: Storage = Object.create(storage) as Storage;
  Object.defineProperty(wrapped, "backend", { value: storage.backend });
  wrapped.put = async (key, body, options) => {
    if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
      const stat = await storage.put(key, body, options);
      hashes.set(key, Promise.resolve(createHash("sha256").update(body).digest("hex")));
      return stat;
    }
    const hash = createHash("sha256");
    const tee = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    (body as Readable).on("error", (error) => tee.destroy(error));
    (body as Readable).pipe(tee);
    const stat = await storage.put(key, tee, options);
    hashes.set(key, Promise.resolve(hash.digest("hex")));
    return stat;
  };
  wrapped.putFile = async (key, localPath, options) => {
    const [stat, digest] = await Promise.all([storage.putFile(key, localPath, options), hashStream(createReadStream(localPath))]);
    hashes.set(key, Promise.resolve(digest));
    return stat;
  };
  return {
    storage: wrapped,
    hashOf: (key) => hashes.get(key) ?? hashStream(storage.createReadStream(key)),
    /** Keys stored through the wrapper (an attempt's own files). */
    written: () => [...hashes.keys()],
  };
}

export async function hashStream(stream: Readable): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(stream, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk);
  });
  return hash.digest("hex");
}
