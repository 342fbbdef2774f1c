-- Up Migration

-- A pipeline's variables: the declarations ({ name, type, default?, description? }) that `{{name}}` placeholders in
-- text assets and string config fields, and media assets bound to a variable, refer to. Structure, so only the
-- editor writes it (column grants, like the pipeline's title and config); readers see it through their table SELECT.
ALTER TABLE video_production_pipelines ADD COLUMN variables jsonb NOT NULL DEFAULT '[]'
  CONSTRAINT video_production_pipelines_variables_array CHECK (jsonb_typeof(variables) = 'array');

GRANT INSERT (variables) ON video_production_pipelines TO vp_editor;
GRANT UPDATE (variables) ON video_production_pipelines TO vp_editor;

-- Down Migration

ALTER TABLE video_production_pipelines DROP COLUMN IF EXISTS variables;
