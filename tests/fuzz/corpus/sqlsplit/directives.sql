-- pgprelude: repeatable
-- pgprelude: no-transaction
CREATE INDEX CONCURRENTLY i ON t (a);
