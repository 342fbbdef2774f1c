/**
 * Test fixture: a process that starts a long ffmpeg through runFfmpeg and then waits, so a test can
 * SIGKILL this process and check that its ffmpeg does not outlive it. argv[2] is the work directory.
 */
import { runFfmpeg } from "../run";

const workDir = process.argv[2];
if (!workDir) throw new Error("usage: long-ffmpeg-child.ts <workDir>");
runFfmpeg(["-re", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=120", "-f", "null", "-"], {
  workDir,
  totalSeconds: 120,
  onProgress: () => process.stdout.write("progress\n"),
}).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
