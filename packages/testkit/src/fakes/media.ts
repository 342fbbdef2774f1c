import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileArg, makeTestClip, runFfmpeg } from "@vp/media";

/** A real H.264 + AAC MP4 (ffmpeg lavfi), what the video providers hand back. */
export async function makeFakeVideo(
  dir: string,
  name: string,
  options: { seconds?: number; width?: number; height?: number; color?: string } = {},
): Promise<string> {
  const path = join(dir, name);
  await makeTestClip({
    path,
    durationSeconds: options.seconds ?? 1,
    width: options.width ?? 320,
    height: options.height ?? 180,
    fps: 25,
    color: options.color,
  });
  return path;
}

/** Real speech: espeak-ng reads `text`, ffmpeg encodes it as MP3 (what ElevenLabs returns for mp3_44100_128). */
export async function makeFakeSpeech(dir: string, name: string, text: string): Promise<string> {
  const wav = join(dir, `${name}.wav`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn("espeak-ng", ["-v", "en-us", "-w", wav, "--stdin"], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`espeak-ng exited ${code}: ${stderr}`))));
    child.stdin.end(text.slice(0, 2000));
  });
  const mp3 = join(dir, name);
  await runFfmpeg(["-i", fileArg(wav), "-c:a", "libmp3lame", "-b:a", "128k", "-ar", "44100", "-f", "mp3", fileArg(mp3)]);
  return mp3;
}
