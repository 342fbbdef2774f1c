/**
 * Extensions of the local copies a handler downloads, from a fixed allow-list: the name on disk is always
 * generated (`seg-000.mp4`), never taken from a key, a content type or a user.
 */
const EXTENSIONS: Record<string, string> = {
  "video/mp4": "mp4",
  "video/quicktime": "mov",
  "video/webm": "webm",
  "video/x-matroska": "mkv",
  "audio/mpeg": "mp3",
  "audio/wav": "wav",
  "audio/x-wav": "wav",
  "audio/mp4": "m4a",
  "audio/ogg": "ogg",
  "image/png": "png",
  "image/jpeg": "jpg",
};

export function localExtension(contentType: string | undefined, fallback: string): string {
  const bare = contentType?.split(";")[0]?.trim().toLowerCase();
  return (bare && EXTENSIONS[bare]) || fallback;
}

export const round3 = (n: number) => Math.round(n * 1000) / 1000;
