import { spawn } from "node:child_process";
import { WorkInputError } from "../errors";

/** espeak-ng voice names: "en-us", "de", "en-gb-scotland", with an optional variant "+f3". */
export const LOCAL_VOICE = /^[a-z]{2,3}(-[a-z0-9]{1,12}){0,3}(\+[a-z0-9]{1,12})?$/i;
export const LOCAL_DEFAULT_VOICE = "en-us";

export interface LocalVoiceOptions {
  text: string;
  /** espeak-ng voice (LOCAL_VOICE). */
  voice?: string;
  /** 1 = espeak-ng's 175 words per minute. */
  speed?: number;
  /** espeak-ng pitch 0-99, default 50. */
  pitch?: number;
  /** WAV file to write (a generated name in the job's work directory). */
  wavPath: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Speaks `text` with espeak-ng into a WAV file. The text goes in on stdin, never as an argument, so nothing in
 * a script can be read as an option.
 */
export function speakLocally(options: LocalVoiceOptions): Promise<void> {
  const voice = options.voice ?? LOCAL_DEFAULT_VOICE;
  if (!LOCAL_VOICE.test(voice)) {
    throw new WorkInputError(`voiceId "${voice}" is not an espeak-ng voice name for the local provider (e.g. en-us, en-gb, de, fr+f3)`);
  }
  const wpm = Math.round(Math.min(450, Math.max(80, 175 * (options.speed ?? 1))));
  const pitch = Math.round(Math.min(99, Math.max(0, options.pitch ?? 50)));
  const args = ["-v", voice, "-s", String(wpm), "-p", String(pitch), "-w", options.wavPath, "--stdin"];
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason ?? new Error("aborted"));
    const child = spawn("espeak-ng", args, { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr = (stderr + c).slice(-4000)));
    const onAbort = () => child.kill("SIGKILL");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.once("error", (error) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      reject(new Error(`espeak-ng could not start: ${error.message}`, { cause: error }));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      if (code === 0) return resolve();
      if (options.signal?.aborted) return reject(options.signal.reason ?? new Error("aborted"));
      const reason = stderr.trim().split("\n").pop() || `exit ${code ?? signal}`;
      if (/voice does not exist/i.test(stderr)) return reject(new WorkInputError(`espeak-ng has no voice "${voice}": ${reason}`));
      reject(new Error(`espeak-ng failed: ${reason}`));
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.text);
  });
}
