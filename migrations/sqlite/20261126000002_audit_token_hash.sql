-- Which token made the request, without the token: the first hex digits of its SHA-256.
ALTER TABLE audit_events ADD COLUMN token_hash_prefix TEXT;
