-- Indexes for the admin API's combined filters, whose pages are ordered by id. Without them a
-- tool + outcome page walks every row of the tool until it has found a page of the outcome,
-- and a client's time window walks the client's rows from its first; both grow with the table.
-- Equal tool and outcome come out in id order, a page without a sort:
CREATE INDEX audit_events_tool_outcome ON audit_events (tool, outcome, id);
-- Only the client's entries in the window are read, then sorted by id; the id is in the entry,
-- so the page's ids are found without visiting the rows (see sql::select_events):
CREATE INDEX audit_events_client_id_time ON audit_events (client_id, occurred_at_ms, id);
