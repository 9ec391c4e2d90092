-- Client ids are chosen by whoever registers a client (a CIMD client's id is a URL its author
-- picks), and a b-tree index row holds at most about 2,700 bytes: a longer id would make every
-- insert of it fail. The clients table keeps ids of any length unique by their SHA-256 and
-- finds them through a hash index; the audit trail bounds its values before they are stored
-- (at most 512 characters), so its b-tree indexes stay as they are.

-- The SHA-256 of a text's UTF-8 bytes. `convert_to` is only STABLE because it reads the
-- encoding; searchgate's texts are UTF-8 whatever the server's encoding, so this is IMMUTABLE.
CREATE FUNCTION searchgate_text_key(value TEXT) RETURNS BYTEA
    LANGUAGE SQL IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT sha256(convert_to(value, 'UTF8')) $$;

ALTER TABLE clients DROP CONSTRAINT clients_pkey;
ALTER TABLE clients ALTER COLUMN client_id SET NOT NULL;
CREATE UNIQUE INDEX clients_client_key ON clients (searchgate_text_key(client_id));
CREATE INDEX clients_client_id ON clients USING HASH (client_id);

-- Pages are ordered by (created_at, client_id); ties on created_at are sorted in memory.
DROP INDEX clients_created_at;
CREATE INDEX clients_created_at ON clients (created_at);
