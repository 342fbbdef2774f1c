import { exactUsd } from "@vp/flow-graph";

/** Dollars and cents ("$12.30"); an amount under a cent reads "< $0.01" (exactCost gives it in full, for a tooltip). */
export function formatCost(usd: number | undefined | null): string {
  if (usd === undefined || usd === null || !Number.isFinite(usd) || usd <= 0) return "$0.00";
  if (usd < 0.005) return "< $0.01";
  return `$${usd.toFixed(2)}`;
}

/** The amount as precisely as it is kept ("$0.00013"): the hover text of a formatCost. */
export function exactCost(usd: number | undefined | null): string {
  if (usd === undefined || usd === null || !Number.isFinite(usd) || usd <= 0) return "$0.00";
  return exactUsd(usd);
}

export function formatBytes(bytes: number | undefined | null): string {
  if (!bytes && bytes !== 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

export function formatDuration(seconds: number | undefined | null): string {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return `${m}:${String(s).padStart(2, "0")} min`;
}

/** "just now", "5 min ago", "3 h ago", else the date. */
export function formatWhen(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "";
  const then = new Date(iso).getTime();
  if (!Number.isFinite(then)) return "";
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" });
}
