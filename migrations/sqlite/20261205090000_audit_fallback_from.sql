-- The search backends that failed before the one in `provider` answered, each with its error
-- code ("tavily:upstream_quota_exhausted,brave:upstream_unavailable"). NULL when the first
-- backend answered, or no backend was asked.
ALTER TABLE audit_events ADD COLUMN fallback_from TEXT;
