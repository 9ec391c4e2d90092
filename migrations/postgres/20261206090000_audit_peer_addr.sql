-- The TCP peer (`address:port`) that delivered the request. `source_addr` is the client's
-- address: the peer's, or behind a trusted proxy the one the proxy names; a peer that differs
-- from it is the proxy. NULL in rows written before this column existed.
ALTER TABLE audit_events ADD COLUMN peer_addr TEXT;
