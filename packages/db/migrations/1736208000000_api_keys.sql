-- Up Migration

-- API keys: long-lived credentials for servers and CI (`vpk_<id>_<secret>`). Only the SHA-256 of the secret is
-- stored. A key is revoked, never deleted, so who made it and when it was last used stay on record.
-- pipeline_ids NULL: every pipeline; else the only pipelines the key may use.
CREATE TABLE video_production_api_keys (
  id varchar PRIMARY KEY,
  name varchar NOT NULL,
  roles varchar[] NOT NULL,
  pipeline_ids varchar[],
  secret_hash bytea NOT NULL,
  created_by varchar NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  revoked_at timestamptz,
  last_used_at timestamptz,
  CONSTRAINT video_production_api_keys_id_check CHECK (id ~ '^[0-9a-f]{16}$'),
  CONSTRAINT video_production_api_keys_name_check CHECK (char_length(name) BETWEEN 1 AND 200),
  CONSTRAINT video_production_api_keys_roles_check
    CHECK (cardinality(roles) > 0 AND roles <@ ARRAY['viewer', 'editor', 'operator']::varchar[]),
  CONSTRAINT video_production_api_keys_pipeline_ids_check CHECK (pipeline_ids IS NULL OR cardinality(pipeline_ids) > 0),
  CONSTRAINT video_production_api_keys_secret_hash_check CHECK (octet_length(secret_hash) = 32)
);

REVOKE ALL ON video_production_api_keys FROM PUBLIC;
-- The gateway (editor role) creates keys, checks them on every request, revokes them and records their last use.
-- It may not change a key's secret, roles or pipelines, nor delete one. No other role reads the table.
GRANT SELECT ON video_production_api_keys TO vp_editor;
GRANT INSERT (id, name, roles, pipeline_ids, secret_hash, created_by) ON video_production_api_keys TO vp_editor;
GRANT UPDATE (revoked_at, last_used_at) ON video_production_api_keys TO vp_editor;

-- Down Migration

DROP TABLE IF EXISTS video_production_api_keys;
