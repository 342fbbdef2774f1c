import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import pg from "pg";
import { dropDatabase, testServerUrl } from "../../testkit/src/db";
import { databaseName, withDatabase } from "./connection";
import { readdirSync } from "node:fs";
import { MIGRATIONS_DIR, migrate } from "./migrate";

/** Every migration file, in the order node-pg-migrate runs them (numeric prefix). */
const ALL = readdirSync(MIGRATIONS_DIR)
  .filter((f) => f.endsWith(".sql"))
  .map((f) => f.replace(/\.sql$/, ""))
  .sort((a, b) => Number(a.split("_")[0]) - Number(b.split("_")[0]));

const created: string[] = [];
function throwawayName(): string {
  const name = `vp_mig_${process.pid}_${randomBytes(4).toString("hex")}`;
  created.push(name);
  return name;
}

afterAll(async () => {
  for (const name of created) await dropDatabase(name);
});

async function tables(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
    return rows.map((r) => r.tablename);
  } finally {
    await c.end();
  }
}

describe("migrate", () => {
  it("creates the database when missing and is idempotent", async () => {
    const adminUrl = withDatabase(testServerUrl(), throwawayName());
    const logs: string[] = [];
    const first = await migrate({ adminUrl, log: (m) => logs.push(m) });
    expect(first.createdDatabase).toBe(true);
    expect(first.applied).toEqual(ALL);
    expect(ALL[0]).toBe("1735689600000_init");
    expect(logs.join("\n")).toContain("1735689600000_init");
    expect(await tables(adminUrl)).toEqual([
      "pgmigrations",
      "video_production_api_keys",
      "video_production_batch_rows",
      "video_production_batches",
      "video_production_cache",
      "video_production_nodes",
      "video_production_pipeline_revisions",
      "video_production_pipelines",
      "video_production_runs",
      "video_production_storage_garbage",
      "video_production_webhook_attempts",
      "video_production_webhook_deliveries",
      "video_production_webhook_endpoints",
    ]);

    const second = await migrate({ adminUrl });
    expect(second).toMatchObject({ createdDatabase: false, applied: [] });
  });

  it("is safe to run twice concurrently (the second waits for the lock, then has nothing to do)", async () => {
    const adminUrl = withDatabase(testServerUrl(), throwawayName());
    const results = await Promise.all([migrate({ adminUrl }), migrate({ adminUrl }), migrate({ adminUrl })]);
    expect(results.flatMap((r) => r.applied)).toEqual(ALL);
    expect(results.filter((r) => r.createdDatabase)).toHaveLength(1);
  });

  it("refuses database names that are not plain identifiers", async () => {
    await expect(migrate({ adminUrl: withDatabase(testServerUrl(), 'x"; DROP DATABASE postgres; --') })).rejects.toThrow(/Invalid database name/);
    expect(() => databaseName("postgres://h/Video")).toThrow(/Invalid database name/);
    expect(databaseName("postgres://h:5432/video_production")).toBe("video_production");
  });

  it("names the server when Postgres is unreachable", async () => {
    await expect(migrate({ adminUrl: "postgres://postgres@127.0.0.1:1/vp_nowhere" })).rejects.toThrow(
      /PostgreSQL is not reachable at postgres:\/\/postgres@127.0.0.1:1\/vp_nowhere/,
    );
  });
});
