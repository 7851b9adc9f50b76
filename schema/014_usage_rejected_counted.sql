-- A usage record the database refuses because its used counters would
-- leave the range of a BIGINT (MariaDB errors 1264 and 1690: a counter
-- set near the largest value by hand) is set aside with those counters
-- left as they are, so that the usage writer goes on with the others
-- instead of trying it for ever. counted says which kind a row is:
-- 1, the used counters (token, user, channel) were written and only the
-- logs row is missing; 0, they were not (the charge itself stands: the
-- quota was taken, and lease metering's spent lease is written).
ALTER TABLE bltcy_usage_rejected
  ADD COLUMN IF NOT EXISTS counted tinyint(1) NOT NULL DEFAULT 1 AFTER prepaid;
