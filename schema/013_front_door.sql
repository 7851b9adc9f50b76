-- The front door: refused tokens and admin logins.

-- Each relay worker remembers keys no token has, for as long as the 'auth'
-- counter stands where it stood when the key was looked up. A new token
-- must move the counter too, or a key refused before its token was made
-- would stay refused: count inserts as 007 counts updates and deletes.
CREATE OR REPLACE TRIGGER bltcy_tokens_ai AFTER INSERT ON tokens
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'auth';

-- Failed admin logins are counted per address ('ip:<address>') and per
-- user name from an address ('pair:<address>|<name>'; a name is 191
-- characters), no longer per name alone: locks of a name from every
-- address ('user:<name>') end here. Rows whose window and lock are over
-- are deleted by first_at.
ALTER TABLE bltcy_login_throttle MODIFY k varchar(255) NOT NULL;
ALTER TABLE bltcy_login_throttle
  ADD KEY IF NOT EXISTS idx_bltcy_login_throttle_first_at (first_at);
DELETE FROM bltcy_login_throttle WHERE k LIKE 'user:%';
