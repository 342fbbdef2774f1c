/**
 * Where to go after signing in: a path of the editor itself, never another origin. Anything else (an absolute
 * URL, a protocol-relative `//host`, a backslash that browsers read as a slash, control characters, the
 * sign-in routes themselves) becomes "/".
 */
export function safeReturnTo(value: string | null | undefined): string {
  if (!value || value.length > 2000 || !value.startsWith("/") || value.startsWith("//") || value.includes("\\")) return "/";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused here.
  if (/[\u0000-\u001f\u007f]/.test(value)) return "/";
  const base = "http://editor.invalid";
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    return "/";
  }
  if (url.origin !== base || url.pathname === "/auth" || url.pathname.startsWith("/auth/")) return "/";
  return `${url.pathname}${url.search}${url.hash}`;
}
