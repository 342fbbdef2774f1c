-- Up Migration

-- Roles are cluster-wide and shared by every database on the server (several test databases at once),
-- so they are created only when missing; a concurrent creator in another database wins the race
-- harmlessly (duplicate_object / unique_violation are swallowed). No passwords: trust locally,
-- operators set them (ALTER ROLE ... PASSWORD) out of band. NOINHERIT: no role picks up another's rights.
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['vp_editor', 'vp_state_writer', 'vp_reader'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
      END;
    END IF;
  END LOOP;
END
$$;

CREATE TABLE video_production_pipelines (
  id varchar PRIMARY KEY,
  version varchar NOT NULL DEFAULT '1.0',
  title varchar NOT NULL,
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_video_production_pipelines_on_updated_at ON video_production_pipelines (updated_at);

CREATE TABLE video_production_nodes (
  id varchar NOT NULL,
  pipeline_id varchar NOT NULL REFERENCES video_production_pipelines (id) ON DELETE CASCADE,
  title varchar NOT NULL,
  -- Structure (editor writes)
  type varchar NOT NULL,
  inputs jsonb NOT NULL DEFAULT '{}'::jsonb,
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  asset jsonb,
  -- Execution state (state-writer writes)
  status varchar NOT NULL DEFAULT 'pending',
  metadata jsonb,
  output jsonb,
  -- Added: grows with every state-writer write (consumers drop events with a lower version).
  state_version integer NOT NULL DEFAULT 0,
  -- Added: stable listing order.
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (pipeline_id, id),
  CONSTRAINT video_production_nodes_status_check
    CHECK (status IN ('pending', 'queued', 'in_progress', 'completed', 'failed', 'cancelled')),
  CONSTRAINT video_production_nodes_type_check
    CHECK (type IN ('asset', 'talking-head', 'generate-animation', 'generate-voiceover',
                    'render-code', 'mix-audio', 'merge-videos', 'compose-video'))
);
CREATE INDEX index_video_production_nodes_on_pipeline_id_and_status
  ON video_production_nodes (pipeline_id, status);

-- Column ownership (architecture invariant 1), enforced by Postgres. Column-level grants only:
-- a table-level UPDATE grant is not narrowed by a later column REVOKE.
REVOKE ALL ON video_production_pipelines, video_production_nodes FROM PUBLIC;

-- Editor: structure columns. Column-level INSERT so an editor cannot insert a node as completed
-- (status, metadata, output take their defaults) or a pipeline with metadata.
GRANT SELECT, DELETE ON video_production_pipelines, video_production_nodes TO vp_editor;
GRANT INSERT (id, version, title, config, created_at, updated_at) ON video_production_pipelines TO vp_editor;
GRANT INSERT (id, pipeline_id, title, type, inputs, config, asset) ON video_production_nodes TO vp_editor;
GRANT UPDATE (title, version, config, updated_at) ON video_production_pipelines TO vp_editor;
GRANT UPDATE (type, inputs, config, asset, title) ON video_production_nodes TO vp_editor;

-- State-writer: execution state only.
GRANT SELECT ON video_production_pipelines, video_production_nodes TO vp_state_writer;
GRANT UPDATE (metadata) ON video_production_pipelines TO vp_state_writer;
GRANT UPDATE (status, metadata, output, state_version) ON video_production_nodes TO vp_state_writer;

-- Reader: gateway, scheduler, executors.
GRANT SELECT ON video_production_pipelines, video_production_nodes TO vp_reader;

-- Down Migration

-- Roles stay: they are cluster-wide and other databases on the server may still use them.
DROP TABLE IF EXISTS video_production_nodes;
DROP TABLE IF EXISTS video_production_pipelines;
