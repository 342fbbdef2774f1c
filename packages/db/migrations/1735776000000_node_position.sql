-- Up Migration

-- Where the editor draws a node on its canvas. Its own column, not a config key: moving a node is not a
-- change of what the node does. Structure, so only the editor writes it (column grants, like the init).
ALTER TABLE video_production_nodes ADD COLUMN position jsonb;
ALTER TABLE video_production_nodes ADD CONSTRAINT video_production_nodes_position_check
  CHECK (position IS NULL OR (jsonb_typeof(position -> 'x') = 'number' AND jsonb_typeof(position -> 'y') = 'number'));

GRANT INSERT (position) ON video_production_nodes TO vp_editor;
GRANT UPDATE (position) ON video_production_nodes TO vp_editor;

-- Nodes list in created_at order. An imported pipeline inserts all its nodes in one transaction, where
-- now() is one value; clock_timestamp() keeps the document's order.
ALTER TABLE video_production_nodes ALTER COLUMN created_at SET DEFAULT clock_timestamp();

-- Down Migration

ALTER TABLE video_production_nodes ALTER COLUMN created_at SET DEFAULT now();
ALTER TABLE video_production_nodes DROP COLUMN IF EXISTS position;
