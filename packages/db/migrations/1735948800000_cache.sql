-- Up Migration

-- The content-addressed result cache. One row per cache key (packages/flow-graph cache-key: the sha256
-- of a node's type, work version, normalised config and its inputs' content hashes): the output made under
-- that key, what it cost, and where it was made. Shared by every pipeline; the stored files it points at are
-- never deleted by the product. Filled only by the state-writer when a node completes; read by the scheduler
-- and the gateway (estimates).
CREATE TABLE video_production_cache (
  cache_key varchar PRIMARY KEY,
  node_type varchar NOT NULL,
  output jsonb NOT NULL,
  cost numeric NOT NULL DEFAULT 0,
  pipeline_id varchar NOT NULL,
  node_id varchar NOT NULL,
  run_id varchar,
  job_id varchar,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  hits integer NOT NULL DEFAULT 0,
  last_hit_at timestamptz,
  CONSTRAINT video_production_cache_key_check CHECK (cache_key ~ '^[a-f0-9]{64}$'),
  CONSTRAINT video_production_cache_output_check CHECK (jsonb_typeof(output) = 'object' AND output ? 's3Key'),
  CONSTRAINT video_production_cache_cost_check CHECK (cost >= 0)
);

REVOKE ALL ON video_production_cache FROM PUBLIC;
GRANT SELECT ON video_production_cache TO vp_reader, vp_state_writer;
GRANT INSERT (cache_key, node_type, output, cost, pipeline_id, node_id, run_id, job_id) ON video_production_cache TO vp_state_writer;
GRANT UPDATE (output, cost, pipeline_id, node_id, run_id, job_id, created_at, hits, last_hit_at) ON video_production_cache TO vp_state_writer;

-- Down Migration

DROP TABLE IF EXISTS video_production_cache;
