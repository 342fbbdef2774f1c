-- Up Migration

-- Pipeline runs: one row per "run all" / "run to here", listable as run history. The member list is
-- stored so a restarted scheduler rebuilds each running run's readiness counters from the nodes' statuses.
-- Run state is execution state: only the state-writer writes it (column grants, like the nodes).
CREATE TABLE video_production_runs (
  id varchar PRIMARY KEY,
  pipeline_id varchar NOT NULL REFERENCES video_production_pipelines (id) ON DELETE CASCADE,
  kind varchar NOT NULL,
  target_node_id varchar,
  node_ids jsonb NOT NULL,
  status varchar NOT NULL DEFAULT 'running',
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  CONSTRAINT video_production_runs_kind_check CHECK (kind IN ('all', 'upstream', 'retry')),
  CONSTRAINT video_production_runs_status_check CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
  CONSTRAINT video_production_runs_node_ids_check CHECK (jsonb_typeof(node_ids) = 'array')
);
CREATE INDEX index_video_production_runs_on_pipeline_id_and_created_at ON video_production_runs (pipeline_id, created_at DESC);
CREATE INDEX index_video_production_runs_running ON video_production_runs (created_at) WHERE status = 'running';

REVOKE ALL ON video_production_runs FROM PUBLIC;
GRANT SELECT ON video_production_runs TO vp_reader, vp_editor, vp_state_writer;
GRANT INSERT (id, pipeline_id, kind, target_node_id, node_ids, metadata) ON video_production_runs TO vp_state_writer;
GRANT UPDATE (status, metadata, finished_at) ON video_production_runs TO vp_state_writer;

-- Down Migration

DROP TABLE IF EXISTS video_production_runs;
