-- Up Migration

-- A node the producer switched off: runs skip it and everything downstream of it, and an execute of it (or of a
-- node fed by it) is refused with the reason. Structure, so only the editor writes it (column grants, like the init).
ALTER TABLE video_production_nodes ADD COLUMN disabled boolean NOT NULL DEFAULT false;

GRANT INSERT (disabled) ON video_production_nodes TO vp_editor;
GRANT UPDATE (disabled) ON video_production_nodes TO vp_editor;

-- Down Migration

ALTER TABLE video_production_nodes DROP COLUMN IF EXISTS disabled;
