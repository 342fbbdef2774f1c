import { logText } from "./logger";

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/**
 * One readable terminal line for one JSON log line (`npm start`): level, message, then the ids and fields.
 * Every printed value is escaped and capped (logText): a logged value cannot add a line or colour the terminal.
 */
export function formatLogLine(line: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return logText(line, 4000);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return logText(line, 4000);
  const { level, time: _t, pid: _p, hostname: _h, service: _s, msg, ...rest } = parsed as Record<string, unknown>;
  const fields = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${logText(k, 100)}=${logText(typeof v === "object" ? JSON.stringify(v) : String(v), 2000)}`)
    .join(" ");
  return `${(LEVELS[level as number] ?? logText(level, 10)).padEnd(5)} ${logText(msg, 2000)}${fields ? `  \x1b[2m${fields}\x1b[0m` : ""}`;
}
