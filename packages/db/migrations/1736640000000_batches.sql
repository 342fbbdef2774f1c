-- Up Migration

-- Batches: one pipeline (the template) run over many rows of variable values. Each row becomes its own pipeline, a
-- clone of the template whose variables' defaults are the row's values, run as a normal "run all". These are
-- orchestration records: the gateway (editor role) writes them; node and run state stays the state-writer's.
CREATE TABLE video_production_batches (
  id varchar PRIMARY KEY,
  pipeline_id varchar NOT NULL REFERENCES video_production_pipelines (id) ON DELETE CASCADE,
  status varchar NOT NULL DEFAULT 'running',
  -- How many rows run at once (the first row always runs alone, so the work rows share is made once).
  concurrency integer NOT NULL DEFAULT 4,
  max_cost numeric,
  -- The node whose output is each row's result (the zip holds it); NULL: the template's last node.
  output_node_id varchar,
  -- The estimate when the batch started: { total, shared, perRow, rows, saved }.
  estimate jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- { waiting, running, completed, failed, cancelled }, kept by the batch driver.
  counts jsonb NOT NULL DEFAULT '{}'::jsonb,
  total_cost numeric NOT NULL DEFAULT 0,
  cost_saved numeric NOT NULL DEFAULT 0,
  created_by varchar NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  CONSTRAINT video_production_batches_status_check CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
  CONSTRAINT video_production_batches_concurrency_check CHECK (concurrency BETWEEN 1 AND 16),
  CONSTRAINT video_production_batches_max_cost_check CHECK (max_cost IS NULL OR max_cost >= 0)
);
CREATE INDEX index_video_production_batches_on_pipeline_id ON video_production_batches (pipeline_id, created_at DESC);
CREATE INDEX index_video_production_batches_active ON video_production_batches (created_at) WHERE finished_at IS NULL;

-- One row of values (1-based index) and the pipeline and run made for it.
CREATE TABLE video_production_batch_rows (
  batch_id varchar NOT NULL REFERENCES video_production_batches (id) ON DELETE CASCADE,
  index integer NOT NULL,
  "values" jsonb NOT NULL,
  pipeline_id varchar REFERENCES video_production_pipelines (id) ON DELETE SET NULL,
  run_id varchar,
  status varchar NOT NULL DEFAULT 'waiting',
  cost numeric,
  cost_saved numeric,
  -- { nodeId, s3Key, type, ... }: the output node's output once the row completed.
  output jsonb,
  error varchar,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (batch_id, index),
  CONSTRAINT video_production_batch_rows_status_check CHECK (status IN ('waiting', 'running', 'completed', 'failed', 'cancelled')),
  CONSTRAINT video_production_batch_rows_index_check CHECK (index >= 1),
  CONSTRAINT video_production_batch_rows_values_check CHECK (jsonb_typeof("values") = 'object')
);

-- A row's pipeline names its batch and row; GET /pipelines leaves them out unless asked. A deleted batch leaves its
-- row pipelines as ordinary pipelines.
ALTER TABLE video_production_pipelines
  ADD COLUMN batch_id varchar REFERENCES video_production_batches (id) ON DELETE SET NULL,
  ADD COLUMN batch_row integer;
CREATE INDEX index_video_production_pipelines_on_batch_id ON video_production_pipelines (batch_id) WHERE batch_id IS NOT NULL;

REVOKE ALL ON video_production_batches, video_production_batch_rows FROM PUBLIC;
GRANT SELECT ON video_production_batches, video_production_batch_rows TO vp_reader, vp_editor;
GRANT INSERT (id, pipeline_id, status, concurrency, max_cost, output_node_id, estimate, counts, created_by) ON video_production_batches TO vp_editor;
GRANT UPDATE (status, counts, total_cost, cost_saved, finished_at) ON video_production_batches TO vp_editor;
GRANT INSERT (batch_id, index, "values", pipeline_id, status) ON video_production_batch_rows TO vp_editor;
GRANT UPDATE (pipeline_id, run_id, status, cost, cost_saved, output, error, updated_at) ON video_production_batch_rows TO vp_editor;
GRANT INSERT (batch_id, batch_row) ON video_production_pipelines TO vp_editor;
GRANT UPDATE (batch_id, batch_row) ON video_production_pipelines TO vp_editor;

-- Down Migration

ALTER TABLE video_production_pipelines DROP COLUMN IF EXISTS batch_row;
ALTER TABLE video_production_pipelines DROP COLUMN IF EXISTS batch_id;
DROP TABLE IF EXISTS video_production_batch_rows;
DROP TABLE IF EXISTS video_production_batches;
