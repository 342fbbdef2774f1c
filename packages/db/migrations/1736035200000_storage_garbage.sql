-- Up Migration

-- Stored files waiting to be deleted. A row is either a prefix ending in '/' (everything a deleted pipeline or node
-- stored: uploads and every attempt's outputs), recorded by the gateway in the transaction that deletes the rows,
-- or one key: a file kept past its owner's deletion because a cache entry or a node still refers to it. The gateway
-- deletes a prefix's files once the delete commits (and again on its periodic pass, should it crash first); a key's
-- file goes on the first pass after nothing refers to it (the state-writer evicts cache entries). Kept keys count
-- towards their pipeline's storage quota, so deleting a node whose result is cached frees no quota until then.
CREATE TABLE video_production_storage_garbage (
  s3_key varchar PRIMARY KEY,
  pipeline_id varchar NOT NULL,
  bytes bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT video_production_storage_garbage_key_check CHECK (s3_key ~ '^pipelines/[^/]+/'),
  CONSTRAINT video_production_storage_garbage_bytes_check CHECK (bytes >= 0)
);
CREATE INDEX index_video_production_storage_garbage_on_pipeline_id ON video_production_storage_garbage (pipeline_id);

REVOKE ALL ON video_production_storage_garbage FROM PUBLIC;
-- The gateway (editor role) records, collects and forgets garbage; everyone else may only read it.
GRANT SELECT, DELETE ON video_production_storage_garbage TO vp_editor;
GRANT INSERT (s3_key, pipeline_id, bytes, created_at) ON video_production_storage_garbage TO vp_editor;
GRANT UPDATE (bytes, created_at) ON video_production_storage_garbage TO vp_editor;
GRANT SELECT ON video_production_storage_garbage TO vp_reader, vp_state_writer;

-- Cache eviction is a state write: the state-writer, which fills the cache, also empties it.
GRANT DELETE ON video_production_cache TO vp_state_writer;

-- "Does anything still refer to this stored file?" by key.
CREATE INDEX index_video_production_cache_on_s3_key ON video_production_cache ((output ->> 's3Key'));
-- A pipeline's storage use counts the results it put in the cache.
CREATE INDEX index_video_production_cache_on_pipeline_id ON video_production_cache (pipeline_id);
CREATE INDEX index_video_production_nodes_on_output_s3_key ON video_production_nodes ((output ->> 's3Key'));
CREATE INDEX index_video_production_nodes_on_asset_source ON video_production_nodes ((asset ->> 'source'));

-- Down Migration

DROP INDEX IF EXISTS index_video_production_nodes_on_asset_source;
DROP INDEX IF EXISTS index_video_production_nodes_on_output_s3_key;
DROP INDEX IF EXISTS index_video_production_cache_on_pipeline_id;
DROP INDEX IF EXISTS index_video_production_cache_on_s3_key;
REVOKE DELETE ON video_production_cache FROM vp_state_writer;
DROP TABLE IF EXISTS video_production_storage_garbage;
