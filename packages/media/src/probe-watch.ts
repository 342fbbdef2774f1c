import { accessSync, constants } from "node:fs";
import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { MediaError } from "./errors";

export interface FfprobeWatch {
  /** ffprobe processes started since the watch began (or since reset). */
  count(): Promise<number>;
  reset(): Promise<void>;
  /** Puts PATH back. */
  stop(): void;
}

/**
 * Counts the ffprobe processes this process starts (for tests of "no probe when the facts are known"): a
 * wrapper put first on PATH notes each start in a log and then runs the real ffprobe, so the probes still
 * happen for real. `dir` must be a directory of the test's own.
 */
export async function watchFfprobe(dir: string): Promise<FfprobeWatch> {
  const originalPath = process.env.PATH ?? "";
  const real = originalPath
    .split(delimiter)
    .map((d) => join(d || ".", "ffprobe"))
    .find((candidate) => {
      try {
        accessSync(candidate, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  if (!real) throw new MediaError("ffprobe is not on PATH");
  const log = join(dir, "ffprobe-starts.log");
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  await writeFile(join(dir, "ffprobe"), `#!/bin/sh\necho start >> ${quote(log)}\nexec ${quote(real)} "$@"\n`);
  await chmod(join(dir, "ffprobe"), 0o755);
  await writeFile(log, "");
  process.env.PATH = `${dir}${delimiter}${originalPath}`;
  return {
    async count() {
      return (await readFile(log, "utf8")).split("\n").filter(Boolean).length;
    },
    async reset() {
      await writeFile(log, "");
    },
    stop() {
      process.env.PATH = originalPath;
      void rm(log, { force: true });
    },
  };
}
