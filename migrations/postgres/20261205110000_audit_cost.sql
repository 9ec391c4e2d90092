-- What a call cost the operator's account, as the backend reported it: Tavily's credits, Exa's
-- US dollars. NULL when the backend did not say, or the cache answered.
ALTER TABLE audit_events ADD COLUMN credits DOUBLE PRECISION;
ALTER TABLE audit_events ADD COLUMN cost_usd DOUBLE PRECISION;
