-- The W3C trace id (32 lowercase hex digits) of the trace the request was part of, so an audit
-- row leads to its trace. NULL when no trace was recorded (OTLP export off and no incoming
-- `traceparent`).
ALTER TABLE audit_events ADD COLUMN trace_id TEXT;
