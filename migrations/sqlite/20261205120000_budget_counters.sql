-- Daily budgets shared by replicas: what each counter (`calls:<principal>`, `credits:<principal>`,
-- `credits:*`) has used on one UTC day (days since 1970-01-01), and what the last take granted
-- (returned by the same statement that takes it).
CREATE TABLE budget_counters (
    scope TEXT NOT NULL,
    day INTEGER NOT NULL,
    used REAL NOT NULL,
    granted REAL NOT NULL,
    PRIMARY KEY (scope, day)
);
