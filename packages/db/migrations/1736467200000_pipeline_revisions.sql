-- Up Migration

-- Structure revisions: every structure write (a node added, changed, moved or removed, the pipeline renamed or its
-- budget set, a restore) makes the pipeline's revision one higher and records what changed, so open editors stay in
-- step, a write based on an older node is refused (If-Match), and any earlier revision can be shown and restored.
-- A node's revision is the pipeline revision of its last structure change.
ALTER TABLE video_production_pipelines ADD COLUMN revision bigint NOT NULL DEFAULT 0;
ALTER TABLE video_production_nodes ADD COLUMN revision bigint NOT NULL DEFAULT 0;

GRANT INSERT (revision) ON video_production_pipelines TO vp_editor;
GRANT UPDATE (revision) ON video_production_pipelines TO vp_editor;
GRANT INSERT (revision) ON video_production_nodes TO vp_editor;
GRANT UPDATE (revision) ON video_production_nodes TO vp_editor;

-- One row per revision: who, when, a one-line summary and the changed nodes' structure before and after (only the
-- nodes that changed, so a long history stays small; an older state is rebuilt by undoing later rows).
CREATE TABLE video_production_pipeline_revisions (
  pipeline_id varchar NOT NULL REFERENCES video_production_pipelines (id) ON DELETE CASCADE,
  revision bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by varchar NOT NULL,
  summary varchar NOT NULL,
  changes jsonb NOT NULL,
  PRIMARY KEY (pipeline_id, revision)
);

GRANT SELECT ON video_production_pipeline_revisions TO vp_editor, vp_reader;
GRANT INSERT (pipeline_id, revision, created_by, summary, changes) ON video_production_pipeline_revisions TO vp_editor;

-- Down Migration

DROP TABLE IF EXISTS video_production_pipeline_revisions;
ALTER TABLE video_production_nodes DROP COLUMN IF EXISTS revision;
ALTER TABLE video_production_pipelines DROP COLUMN IF EXISTS revision;
