-- Up Migration

-- Node types are defined by the node-type catalog (@vp/contracts), and the gateway, the only writer of structure,
-- refuses a type the catalog does not know. The database keeps a shape check only, so a new node type needs no
-- migration.
ALTER TABLE video_production_nodes DROP CONSTRAINT video_production_nodes_type_check;
ALTER TABLE video_production_nodes
  ADD CONSTRAINT video_production_nodes_type_check CHECK (type ~ '^[a-z][a-z0-9-]{0,63}$');

-- Down Migration

ALTER TABLE video_production_nodes DROP CONSTRAINT video_production_nodes_type_check;
ALTER TABLE video_production_nodes
  ADD CONSTRAINT video_production_nodes_type_check
    CHECK (type IN ('asset', 'talking-head', 'generate-animation', 'generate-voiceover',
                    'render-code', 'mix-audio', 'merge-videos', 'compose-video'));
