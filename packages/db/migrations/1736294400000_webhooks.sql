-- Up Migration

-- Webhooks: a pipeline's endpoints (a URL and the events it wants), one delivery per endpoint and event, and a log
-- line per attempt to send it. The gateway (editor role) writes all three: it turns finished runs and failed nodes,
-- which it only reads, into deliveries, sends them and records each attempt. Execution-state tables gain no rights.
CREATE TABLE video_production_webhook_endpoints (
  id varchar PRIMARY KEY,
  pipeline_id varchar NOT NULL REFERENCES video_production_pipelines (id) ON DELETE CASCADE,
  url varchar NOT NULL,
  events varchar[] NOT NULL,
  -- The signing secret, AES-256-GCM under the gateway's WEBHOOK_SECRET_KEY (nonce, tag, ciphertext): the gateway
  -- signs every delivery with it, so it is stored recoverable, never in clear.
  secret_ciphertext bytea NOT NULL,
  created_by varchar NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Events at or after this time are still looked for (it trails the last scan by a margin; starts at created_at,
  -- so nothing that happened before the endpoint existed is delivered).
  scan_from timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT video_production_webhook_endpoints_url_check CHECK (char_length(url) BETWEEN 1 AND 2048),
  -- batch.finished and row.finished are reserved for batches; the gateway accepts only what it delivers.
  CONSTRAINT video_production_webhook_endpoints_events_check
    CHECK (cardinality(events) > 0 AND events <@ ARRAY['run.finished', 'node.failed', 'batch.finished', 'row.finished']::varchar[])
);
CREATE INDEX index_video_production_webhook_endpoints_on_pipeline_id ON video_production_webhook_endpoints (pipeline_id, created_at);

-- One row per endpoint and event (event_key: "run:<run id>", "node:<node id>:<job id>"), so a restart or a second
-- gateway never makes two. The id is the webhook-id header: the same on every attempt, for receivers to dedupe.
CREATE TABLE video_production_webhook_deliveries (
  id varchar PRIMARY KEY,
  endpoint_id varchar NOT NULL REFERENCES video_production_webhook_endpoints (id) ON DELETE CASCADE,
  pipeline_id varchar NOT NULL,
  event_type varchar NOT NULL,
  event_key varchar NOT NULL,
  payload jsonb NOT NULL,
  -- pending: to be sent at next_attempt_at; delivered: a 2xx came back; failed: the retry schedule ran out.
  status varchar NOT NULL DEFAULT 'pending',
  attempts integer NOT NULL DEFAULT 0,
  -- The attempt count when the current retry schedule began (a redelivery by hand starts a new one).
  schedule_start integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  -- Set while a gateway sends (its claim, from claimed_at; next_attempt_at is then the claim's expiry), cleared when
  -- it records the attempt.
  claim uuid,
  claimed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  CONSTRAINT video_production_webhook_deliveries_event_unique UNIQUE (endpoint_id, event_key),
  CONSTRAINT video_production_webhook_deliveries_status_check CHECK (status IN ('pending', 'delivered', 'failed')),
  CONSTRAINT video_production_webhook_deliveries_due_check CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX index_video_production_webhook_deliveries_due ON video_production_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX index_video_production_webhook_deliveries_on_endpoint ON video_production_webhook_deliveries (endpoint_id, created_at DESC);

-- The delivery log: every attempt with its time, what came back (status code and the start of the body) or the
-- error, and how long it took.
CREATE TABLE video_production_webhook_attempts (
  delivery_id varchar NOT NULL REFERENCES video_production_webhook_deliveries (id) ON DELETE CASCADE,
  attempt integer NOT NULL,
  manual boolean NOT NULL DEFAULT false,
  started_at timestamptz NOT NULL,
  -- NULL: the gateway stopped during the attempt, so its outcome is unknown.
  duration_ms integer,
  status_code integer,
  response_body varchar,
  error varchar,
  PRIMARY KEY (delivery_id, attempt),
  CONSTRAINT video_production_webhook_attempts_outcome_check CHECK (status_code IS NOT NULL OR error IS NOT NULL)
);

REVOKE ALL ON video_production_webhook_endpoints, video_production_webhook_deliveries, video_production_webhook_attempts FROM PUBLIC;
-- The gateway (editor role) creates and deletes endpoints and advances their scan; it may not change an endpoint's
-- URL, events or secret (delete and create anew). No other role reads these tables.
GRANT SELECT, DELETE ON video_production_webhook_endpoints TO vp_editor;
GRANT INSERT (id, pipeline_id, url, events, secret_ciphertext, created_by) ON video_production_webhook_endpoints TO vp_editor;
GRANT UPDATE (scan_from) ON video_production_webhook_endpoints TO vp_editor;
GRANT SELECT ON video_production_webhook_deliveries TO vp_editor;
GRANT INSERT (id, endpoint_id, pipeline_id, event_type, event_key, payload, next_attempt_at) ON video_production_webhook_deliveries TO vp_editor;
GRANT UPDATE (status, attempts, schedule_start, next_attempt_at, claim, claimed_at, finished_at) ON video_production_webhook_deliveries TO vp_editor;
GRANT SELECT ON video_production_webhook_attempts TO vp_editor;
GRANT INSERT (delivery_id, attempt, manual, started_at, duration_ms, status_code, response_body, error) ON video_production_webhook_attempts TO vp_editor;

-- Down Migration

DROP TABLE IF EXISTS video_production_webhook_attempts;
DROP TABLE IF EXISTS video_production_webhook_deliveries;
DROP TABLE IF EXISTS video_production_webhook_endpoints;
