/** `npm run db:migrate`: creates and migrates DATABASE_ADMIN_URL (default: the local video_production db). */
import { DEFAULT_DATABASE_URL, redactUrl } from "./connection";
import { migrate } from "./migrate";

const adminUrl = process.env.DATABASE_ADMIN_URL || DEFAULT_DATABASE_URL;

try {
  const result = await migrate({ adminUrl, log: (m) => console.log(m) });
  if (result.applied.length === 0) {
    console.log(`Database ${result.database} (${redactUrl(adminUrl)}) is up to date.`);
  } else {
    console.log(`Applied ${result.applied.length} migration(s) to ${result.database}: ${result.applied.join(", ")}`);
  }
} catch (err) {
  console.error(`Migration failed for ${redactUrl(adminUrl)}: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
}
