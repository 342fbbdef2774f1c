import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { createNode } from "./editor";

// Architecture invariant 1: only the state-writer can change status, metadata or output, and it can
// change nothing else. Enforced by Postgres column grants, so these tests talk SQL directly.

let t: TestDatabase;
const P = "p-roles";
const N = "n-roles";

beforeAll(async () => {
  t = await createTestDatabase();
  await insertPipelineFixture(t.admin, { id: P });
  await insertNodeFixture(t.admin, { pipelineId: P, id: N });
});
afterAll(async () => {
  await t?.drop();
});

const DENIED = /permission denied/;

describe("roles", () => {
  it("are LOGIN NOINHERIT and not superusers", async () => {
    const { rows } = await t.admin.query(`SELECT rolname, rolcanlogin, rolinherit, rolsuper FROM pg_roles WHERE rolname LIKE 'vp\\_%' ORDER BY rolname`);
    const byName = Object.fromEntries(rows.map((r) => [r.rolname, r]));
    for (const role of ["vp_editor", "vp_state_writer", "vp_reader"]) {
      expect(byName[role]).toMatchObject({ rolcanlogin: true, rolinherit: false, rolsuper: false });
    }
  });

  it("hold no table-level UPDATE or INSERT (column grants only) and PUBLIC holds nothing", async () => {
    const { rows } = await t.admin.query(
      `SELECT grantee, table_name, privilege_type FROM information_schema.table_privileges
       WHERE table_name LIKE 'video_production_%' AND grantee <> 'postgres' ORDER BY 1, 2, 3`,
    );
    const grants = rows.map((r) => `${r.grantee}:${r.table_name}:${r.privilege_type}`);
    expect(grants.filter((g) => /:(UPDATE|INSERT|TRUNCATE|REFERENCES|TRIGGER)$/.test(g))).toEqual([]);
    expect(grants.filter((g) => g.startsWith("PUBLIC:"))).toEqual([]);
  });
});

describe("vp_editor", () => {
  it.each([
    [`UPDATE video_production_nodes SET status = 'completed' WHERE id = '${N}'`],
    [`UPDATE video_production_nodes SET metadata = '{"cost": 1}' WHERE id = '${N}'`],
    [`UPDATE video_production_nodes SET output = '{}' WHERE id = '${N}'`],
    [`UPDATE video_production_nodes SET state_version = 99 WHERE id = '${N}'`],
    [`UPDATE video_production_pipelines SET metadata = '{}' WHERE id = '${P}'`],
    [`INSERT INTO video_production_nodes (id, pipeline_id, title, type, status) VALUES ('x', '${P}', 'X', 'asset', 'completed')`],
    [`INSERT INTO video_production_nodes (id, pipeline_id, title, type, metadata) VALUES ('x', '${P}', 'X', 'asset', '{}')`],
    [`INSERT INTO video_production_nodes (id, pipeline_id, title, type, output) VALUES ('x', '${P}', 'X', 'asset', '{}')`],
    [`INSERT INTO video_production_pipelines (id, title, metadata) VALUES ('px', 'X', '{}')`],
  ])("is denied: %s", async (sql) => {
    await expect(t.pools.editor.query(sql)).rejects.toThrow(DENIED);
  });

  it("may write structure columns, insert pending nodes and delete", async () => {
    const r = await t.pools.editor.query(
      `UPDATE video_production_nodes
       SET title = 'T2', type = 'merge-videos', inputs = '{"segments": []}', config = config || '{"a": 1}', asset = '{"type": "video"}'
       WHERE pipeline_id = $1 AND id = $2`,
      [P, N],
    );
    expect(r.rowCount).toBe(1);
    await t.pools.editor.query(`UPDATE video_production_pipelines SET title = 'P2', version = '1.1', config = '{}', updated_at = now() WHERE id = $1`, [P]);
    await t.pools.editor.query(
      `INSERT INTO video_production_pipelines (id, version, title, config, created_at, updated_at) VALUES ('p-ed', '1.0', 'E', '{}', now(), now())`,
    );
    const node = await createNode(t.pools.editor, { pipelineId: "p-ed", id: "n1", title: "N", type: "asset" });
    expect(node).toMatchObject({ status: "pending", metadata: null, output: null, state_version: 0 });
    expect((await t.pools.editor.query(`DELETE FROM video_production_nodes WHERE pipeline_id = 'p-ed'`)).rowCount).toBe(1);
    expect((await t.pools.editor.query(`DELETE FROM video_production_pipelines WHERE id = 'p-ed'`)).rowCount).toBe(1);
  });
});

describe("vp_state_writer", () => {
  it.each([
    [`UPDATE video_production_nodes SET title = 'hacked' WHERE id = '${N}'`],
    [`UPDATE video_production_nodes SET type = 'asset' WHERE id = '${N}'`],
    [`UPDATE video_production_nodes SET inputs = '{}' WHERE id = '${N}'`],
    [`UPDATE video_production_nodes SET config = '{}' WHERE id = '${N}'`],
    [`UPDATE video_production_nodes SET asset = NULL WHERE id = '${N}'`],
    [`UPDATE video_production_pipelines SET title = 'hacked' WHERE id = '${P}'`],
    [`UPDATE video_production_pipelines SET config = '{}' WHERE id = '${P}'`],
    [`UPDATE video_production_pipelines SET updated_at = now() WHERE id = '${P}'`],
    [`INSERT INTO video_production_nodes (id, pipeline_id, title, type) VALUES ('y', '${P}', 'Y', 'asset')`],
    [`INSERT INTO video_production_pipelines (id, title) VALUES ('py', 'Y')`],
    [`DELETE FROM video_production_nodes WHERE id = '${N}'`],
    [`DELETE FROM video_production_pipelines WHERE id = '${P}'`],
  ])("is denied: %s", async (sql) => {
    await expect(t.pools.stateWriter.query(sql)).rejects.toThrow(DENIED);
  });

  it("may write status, metadata, output, state_version and pipeline metadata", async () => {
    const r = await t.pools.stateWriter.query(
      `UPDATE video_production_nodes
       SET status = 'queued', metadata = COALESCE(metadata, '{}') || '{"jobId": "j"}', output = '{}', state_version = state_version + 1
       WHERE pipeline_id = $1 AND id = $2`,
      [P, N],
    );
    expect(r.rowCount).toBe(1);
    const p = await t.pools.stateWriter.query(`UPDATE video_production_pipelines SET metadata = metadata || '{"x": 1}' WHERE id = $1`, [P]);
    expect(p.rowCount).toBe(1);
    // Locking the pipeline row (first step of every state transition) is allowed.
    const locked = await t.pools.stateWriter.query(`SELECT id FROM video_production_pipelines WHERE id = $1 FOR UPDATE`, [P]);
    expect(locked.rows).toEqual([{ id: P }]);
  });
});

describe("vp_reader", () => {
  it.each([
    [`UPDATE video_production_nodes SET status = 'completed' WHERE id = '${N}'`],
    [`UPDATE video_production_nodes SET title = 'x' WHERE id = '${N}'`],
    [`UPDATE video_production_nodes SET metadata = '{}' WHERE id = '${N}'`],
    [`UPDATE video_production_pipelines SET title = 'x' WHERE id = '${P}'`],
    [`UPDATE video_production_pipelines SET metadata = '{}' WHERE id = '${P}'`],
    [`INSERT INTO video_production_nodes (id, pipeline_id, title, type) VALUES ('z', '${P}', 'Z', 'asset')`],
    [`INSERT INTO video_production_pipelines (id, title) VALUES ('pz', 'Z')`],
    [`DELETE FROM video_production_nodes WHERE id = '${N}'`],
    [`DELETE FROM video_production_pipelines WHERE id = '${P}'`],
    [`SELECT id FROM video_production_nodes FOR UPDATE`],
  ])("is denied: %s", async (sql) => {
    await expect(t.pools.reader.query(sql)).rejects.toThrow(DENIED);
  });

  it("may read both tables", async () => {
    const nodes = await t.pools.reader.query(`SELECT * FROM video_production_nodes WHERE pipeline_id = $1`, [P]);
    const pipes = await t.pools.reader.query(`SELECT * FROM video_production_pipelines WHERE id = $1`, [P]);
    expect(nodes.rowCount).toBe(1);
    expect(pipes.rowCount).toBe(1);
  });
});

describe("video_production_cache: filled only by the state-writer", () => {
  const KEY = "c".repeat(64);
  const insert = `INSERT INTO video_production_cache (cache_key, node_type, output, cost, pipeline_id, node_id) VALUES ('${KEY}', 'asset', '{"type":"text","s3Key":"k"}', 0.5, '${P}', '${N}')`;
  it.each([["editor" as const], ["reader" as const]])("%s may not insert, change or delete cache entries", async (role) => {
    const pool = t.pools[role];
    await expect(pool.query(insert)).rejects.toThrow(DENIED);
    await expect(pool.query(`UPDATE video_production_cache SET cost = 0`)).rejects.toThrow(DENIED);
    await expect(pool.query(`DELETE FROM video_production_cache`)).rejects.toThrow(DENIED);
  });

  it("the state-writer inserts, counts hits and evicts; the reader reads; keys and outputs are checked", async () => {
    await t.pools.stateWriter.query(insert);
    await t.pools.stateWriter.query(`UPDATE video_production_cache SET hits = hits + 1 WHERE cache_key = '${KEY}'`);
    const { rows } = await t.pools.reader.query(`SELECT hits, cost FROM video_production_cache WHERE cache_key = '${KEY}'`);
    expect(rows).toEqual([{ hits: 1, cost: "0.5" }]);
    await t.pools.stateWriter.query(`DELETE FROM video_production_cache WHERE cache_key = '${KEY}'`);
    await t.pools.stateWriter.query(insert);
    await expect(t.pools.stateWriter.query(insert.replace(KEY, "not-a-sha256"))).rejects.toThrow(/video_production_cache_key_check/);
    await expect(t.pools.stateWriter.query(insert.replace(KEY, "d".repeat(64)).replace(`'{"type":"text","s3Key":"k"}'`, `'{"type":"text"}'`))).rejects.toThrow(
      /video_production_cache_output_check/,
    );
  });
});

describe("video_production_storage_garbage: recorded and collected only by the gateway's editor role", () => {
  const insert = `INSERT INTO video_production_storage_garbage (s3_key, pipeline_id, bytes) VALUES ('pipelines/${P}/nodes/x/j-a1/output.mp4', '${P}', 5)`;
  it.each([["stateWriter" as const], ["reader" as const]])("%s may read but not record, change or forget garbage", async (role) => {
    const pool = t.pools[role];
    await pool.query(`SELECT * FROM video_production_storage_garbage`);
    await expect(pool.query(insert)).rejects.toThrow(DENIED);
    await expect(pool.query(`UPDATE video_production_storage_garbage SET bytes = 0`)).rejects.toThrow(DENIED);
    await expect(pool.query(`DELETE FROM video_production_storage_garbage`)).rejects.toThrow(DENIED);
  });

  it("the editor records, updates and forgets garbage under pipelines/ only", async () => {
    await t.pools.editor.query(insert);
    await t.pools.editor.query(`UPDATE video_production_storage_garbage SET bytes = 6`);
    await expect(t.pools.editor.query(insert.replace(`'pipelines/${P}/`, `'elsewhere/`))).rejects.toThrow(/video_production_storage_garbage_key_check/);
    expect((await t.pools.editor.query(`DELETE FROM video_production_storage_garbage`)).rowCount).toBe(1);
  });
});

describe("video_production_api_keys: read and written only by the gateway's editor role", () => {
  const HASH = `'\\x${"ab".repeat(32)}'::bytea`;
  const insert = (id: string) =>
    `INSERT INTO video_production_api_keys (id, name, roles, pipeline_ids, secret_hash, created_by) VALUES ('${id}', 'CI', '{viewer}', NULL, ${HASH}, 'dev')`;

  it.each([["stateWriter" as const], ["reader" as const]])("%s may not read, create, change or delete keys", async (role) => {
    const pool = t.pools[role];
    await expect(pool.query(`SELECT id FROM video_production_api_keys`)).rejects.toThrow(DENIED);
    await expect(pool.query(insert("00000000000000aa"))).rejects.toThrow(DENIED);
    await expect(pool.query(`UPDATE video_production_api_keys SET revoked_at = now()`)).rejects.toThrow(DENIED);
    await expect(pool.query(`DELETE FROM video_production_api_keys`)).rejects.toThrow(DENIED);
  });

  it("the editor creates, reads, revokes and touches keys, but cannot change a key's secret, roles, pipelines or author, nor delete one", async () => {
    const id = "00000000000000ab";
    await t.pools.editor.query(insert(id));
    await t.pools.editor.query(`UPDATE video_production_api_keys SET revoked_at = now(), last_used_at = now() WHERE id = '${id}'`);
    for (const set of [`secret_hash = ${HASH}`, `roles = '{operator}'`, `pipeline_ids = '{p}'`, `name = 'x'`, `created_by = 'x'`, `created_at = now()`]) {
      await expect(t.pools.editor.query(`UPDATE video_production_api_keys SET ${set} WHERE id = '${id}'`), set).rejects.toThrow(DENIED);
    }
    await expect(
      t.pools.editor.query(
        `INSERT INTO video_production_api_keys (id, name, roles, secret_hash, created_by, revoked_at) VALUES ('00000000000000ac', 'CI', '{viewer}', ${HASH}, 'dev', NULL)`,
      ),
    ).rejects.toThrow(DENIED);
    await expect(t.pools.editor.query(`DELETE FROM video_production_api_keys WHERE id = '${id}'`)).rejects.toThrow(DENIED);
  });

  it("refuses malformed keys: id, roles, an empty pipeline list, a hash that is not 32 bytes", async () => {
    await expect(t.pools.editor.query(insert("not-hex"))).rejects.toThrow(/video_production_api_keys_id_check/);
    await expect(t.pools.editor.query(insert("00000000000000ad").replace("'{viewer}'", "'{admin}'"))).rejects.toThrow(/video_production_api_keys_roles_check/);
    await expect(t.pools.editor.query(insert("00000000000000ad").replace("'{viewer}'", "'{}'"))).rejects.toThrow(/video_production_api_keys_roles_check/);
    await expect(t.pools.editor.query(insert("00000000000000ad").replace("NULL", "'{}'"))).rejects.toThrow(/video_production_api_keys_pipeline_ids_check/);
    await expect(t.pools.editor.query(insert("00000000000000ad").replace(HASH, `'\\x00'::bytea`))).rejects.toThrow(
      /video_production_api_keys_secret_hash_check/,
    );
  });
});

describe("webhook tables: read and written only by the gateway's editor role", () => {
  const CIPHER = `'\\x${"cd".repeat(40)}'::bytea`;
  const endpoint = (id: string) =>
    `INSERT INTO video_production_webhook_endpoints (id, pipeline_id, url, events, secret_ciphertext, created_by)
     VALUES ('${id}', '${P}', 'https://example.com/hook', '{run.finished}', ${CIPHER}, 'dev')`;
  const delivery = (id: string, endpointId: string) =>
    `INSERT INTO video_production_webhook_deliveries (id, endpoint_id, pipeline_id, event_type, event_key, payload, next_attempt_at)
     VALUES ('${id}', '${endpointId}', '${P}', 'run.finished', 'run:${id}', '{}', now())`;
  const attempt = (deliveryId: string) =>
    `INSERT INTO video_production_webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code) VALUES ('${deliveryId}', 1, now(), 5, 200)`;

  it.each([["stateWriter" as const], ["reader" as const]])("%s may not read or write endpoints, deliveries or their log", async (role) => {
    const pool = t.pools[role];
    for (const table of ["endpoints", "deliveries", "attempts"]) {
      await expect(pool.query(`SELECT * FROM video_production_webhook_${table}`), table).rejects.toThrow(DENIED);
    }
    await expect(pool.query(endpoint("wh-denied"))).rejects.toThrow(DENIED);
    await expect(pool.query(delivery("msg-denied", "wh-denied"))).rejects.toThrow(DENIED);
    await expect(pool.query(attempt("msg-denied"))).rejects.toThrow(DENIED);
    await expect(pool.query(`UPDATE video_production_webhook_deliveries SET status = 'delivered'`)).rejects.toThrow(DENIED);
    await expect(pool.query(`DELETE FROM video_production_webhook_endpoints`)).rejects.toThrow(DENIED);
  });

  it("the editor creates and deletes endpoints, queues and moves deliveries, logs attempts; it cannot rewrite an endpoint or the log", async () => {
    const editor = t.pools.editor;
    await editor.query(endpoint("wh-1"));
    await editor.query(delivery("msg-1", "wh-1"));
    await editor.query(
      `UPDATE video_production_webhook_deliveries SET attempts = 1, claim = gen_random_uuid(), claimed_at = now(), next_attempt_at = now() WHERE id = 'msg-1'`,
    );
    await editor.query(attempt("msg-1"));
    await editor.query(`UPDATE video_production_webhook_deliveries SET status = 'delivered', next_attempt_at = NULL, finished_at = now() WHERE id = 'msg-1'`);
    await editor.query(`UPDATE video_production_webhook_endpoints SET scan_from = now() WHERE id = 'wh-1'`);
    for (const set of [
      "url = 'https://elsewhere.example/'",
      "events = '{node.failed}'",
      `secret_ciphertext = ${CIPHER}`,
      "pipeline_id = 'x'",
      "created_at = now()",
    ]) {
      await expect(editor.query(`UPDATE video_production_webhook_endpoints SET ${set} WHERE id = 'wh-1'`), set).rejects.toThrow(DENIED);
    }
    for (const set of ["payload = '{}'", "event_key = 'x'", "endpoint_id = 'wh-1'"]) {
      await expect(editor.query(`UPDATE video_production_webhook_deliveries SET ${set} WHERE id = 'msg-1'`), set).rejects.toThrow(DENIED);
    }
    await expect(editor.query(`UPDATE video_production_webhook_attempts SET status_code = 500`)).rejects.toThrow(DENIED);
    await expect(editor.query(`DELETE FROM video_production_webhook_attempts`)).rejects.toThrow(DENIED);
    await expect(editor.query(`DELETE FROM video_production_webhook_deliveries`)).rejects.toThrow(DENIED);
    // Deleting the endpoint takes its deliveries and their log with it.
    expect((await editor.query(`DELETE FROM video_production_webhook_endpoints WHERE id = 'wh-1'`)).rowCount).toBe(1);
    expect((await t.admin.query(`SELECT count(*)::int AS n FROM video_production_webhook_attempts`)).rows).toEqual([{ n: 0 }]);
  });

  it("refuses event types it does not know, one delivery twice per endpoint and event, and a pending delivery without a due time", async () => {
    const editor = t.pools.editor;
    await expect(editor.query(endpoint("wh-2").replace("'{run.finished}'", "'{run.started}'"))).rejects.toThrow(
      /video_production_webhook_endpoints_events_check/,
    );
    await expect(editor.query(endpoint("wh-2").replace("'{run.finished}'", "'{}'"))).rejects.toThrow(/video_production_webhook_endpoints_events_check/);
    // Reserved for batches: the table accepts them already.
    await editor.query(endpoint("wh-2").replace("'{run.finished}'", "'{batch.finished,row.finished}'"));
    await editor.query(delivery("msg-2", "wh-2"));
    await expect(editor.query(delivery("msg-3", "wh-2").replace("'run:msg-3'", "'run:msg-2'"))).rejects.toThrow(
      /video_production_webhook_deliveries_event_unique/,
    );
    await expect(editor.query(delivery("msg-4", "wh-2").replace(", now())", ", NULL)"))).rejects.toThrow(/video_production_webhook_deliveries_due_check/);
  });
});
