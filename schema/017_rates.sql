-- Limits' counts, traded between the hosts that share the database
-- (fcgi/reqlimit.c): each host's count of a slot of a window (width > 0:
-- a slot of width seconds, slot its number since the epoch), or of its
-- requests in flight now (width 0, slot 0), per kind and token or user.
-- Each master writes its own rows once a second and reads the others'
-- sums; rows past their use (expires, epoch seconds) are deleted.
CREATE TABLE IF NOT EXISTS bltcy_rate_counts (
  kind tinyint NOT NULL,
  id bigint NOT NULL,
  width int NOT NULL,
  slot bigint NOT NULL,
  host varchar(64) NOT NULL,
  n bigint NOT NULL DEFAULT 0,
  expires bigint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (kind, id, width, slot, host),
  KEY bltcy_rate_counts_updated (updated_at),
  KEY bltcy_rate_counts_expires (expires)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
