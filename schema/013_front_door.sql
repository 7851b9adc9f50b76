-- The front door: admin logins.

-- Failed admin logins are counted per address ('ip:<address>') and per
-- user name from an address ('pair:<address>|<name>'; a name is 191
-- characters), no longer per name alone: locks of a name from every
-- address ('user:<name>') end here. Rows whose window and lock are over
-- are deleted by first_at.
ALTER TABLE bltcy_login_throttle MODIFY k varchar(255) NOT NULL;
ALTER TABLE bltcy_login_throttle
  ADD KEY IF NOT EXISTS idx_bltcy_login_throttle_first_at (first_at);
DELETE FROM bltcy_login_throttle WHERE k LIKE 'user:%';
