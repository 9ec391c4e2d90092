-- Daily budgets shared by replicas: what each counter (`calls:<principal>`, `credits:<principal>`,
-- `credits:*`) has used on one UTC day (days since 1970-01-01), and what the last take granted
-- (returned by the same statement that takes it).
CREATE TABLE budget_counters (
    scope TEXT NOT NULL,
    day BIGINT NOT NULL,
    used DOUBLE PRECISION NOT NULL,
    granted DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, day)
);
