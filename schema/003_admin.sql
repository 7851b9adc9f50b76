-- The admin pages' own tables. Safe to run again (IF NOT EXISTS).

-- Failed logins, one row per key: 'ip:<address>' and 'user:<name>'. A key
-- with too many failures inside the window is locked until locked_until.
CREATE TABLE IF NOT EXISTS bltcy_login_throttle (
  k varchar(191) NOT NULL,
  failures int NOT NULL DEFAULT 0,
  first_at bigint NOT NULL DEFAULT 0,
  locked_until bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (k)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Sessions ended by "log out" before their expiry, by nonce. The cookie is
-- signed and carries its own expiry; this list makes logging out final.
CREATE TABLE IF NOT EXISTS bltcy_admin_revoked (
  nonce varchar(64) NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (nonce),
  KEY idx_bltcy_admin_revoked_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
