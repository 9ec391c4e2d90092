-- What a tool was asked for (query or URLs, at most 200 characters; NULL when
-- audit.record_queries is off), and indexes for the admin API's filters.
ALTER TABLE audit_events ADD COLUMN query_summary TEXT;
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_client_id ON audit_events (client_id, id);
CREATE INDEX audit_events_tool ON audit_events (tool, id);
