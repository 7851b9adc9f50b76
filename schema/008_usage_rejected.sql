-- Usage records the database refused (a value it will not take: text
-- that is not UTF-8, a value too long for its column, a CHECK or a
-- trigger). The master's usage writer sets such a record aside here
-- instead of trying its batch again for ever: the charge it stands for is
-- kept (the used counters are written as usual), and its text fields are
-- kept byte for byte, with every byte that is not valid UTF-8, every
-- control byte and the backslash written as \xNN. An operator can correct
-- and insert the logs row by hand; nothing reads this table.
CREATE TABLE IF NOT EXISTS bltcy_usage_rejected (
  id bigint NOT NULL AUTO_INCREMENT,
  request_id varchar(191) NOT NULL,
  host text NOT NULL,
  created_at bigint NOT NULL,
  rejected_at bigint NOT NULL,
  user_id bigint NOT NULL,
  token_id bigint NOT NULL,
  channel_id bigint NOT NULL,
  quota bigint NOT NULL,
  use_time bigint NOT NULL,
  recovered tinyint(1) NOT NULL,
  prepaid tinyint(1) NOT NULL,
  method text NOT NULL,
  path text NOT NULL,
  ip text NOT NULL,
  username text NOT NULL,
  token_name text NOT NULL,
  `group` text NOT NULL,
  service text NOT NULL,
  task_ids text NOT NULL,
  error text NOT NULL,
  PRIMARY KEY (id),
  KEY idx_bltcy_usage_rejected_request_id (request_id),
  KEY idx_bltcy_usage_rejected_created_at (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
