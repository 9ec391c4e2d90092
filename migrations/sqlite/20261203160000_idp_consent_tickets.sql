-- Consent tickets the embedded authorization server has taken a decision on (approve or deny),
-- kept until they expire, so a consent form posted again, to any replica, is refused. The id is
-- the ticket's random `jti`; times are seconds since the Unix epoch.
CREATE TABLE idp_consent_tickets (
    ticket_id  TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE INDEX idp_consent_tickets_expires_at ON idp_consent_tickets (expires_at);
