-- What a web tool did upstream: which backend, whether the cache answered, how many requests
-- it made (retries included) and the backend's own request id. NULL for requests that ran no
-- tool or never reached the backend.
ALTER TABLE audit_events ADD COLUMN provider TEXT;
ALTER TABLE audit_events ADD COLUMN cache_hit INTEGER;  -- 0 | 1
ALTER TABLE audit_events ADD COLUMN upstream_attempts INTEGER;
ALTER TABLE audit_events ADD COLUMN upstream_request_id TEXT;
