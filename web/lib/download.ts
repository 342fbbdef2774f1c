/** A pipeline's export file name: its title as a slug (at most 60 characters), "pipeline" when nothing is left. */
export function exportFileName(title: string): string {
  const slug =
    title
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "pipeline";
  return `${slug.slice(0, 60)}.pipeline.json`;
}

/** Saves `value` as pretty-printed JSON through the browser's download. */
export function downloadJson(value: unknown, fileName: string): void {
  const blob = new Blob([`${JSON.stringify(value, null, 2)}\n`], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const a = window.document.createElement("a");
  a.href = url;
  a.download = fileName;
  a.click();
  // The click only starts the download; the URL must outlive it.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
