-- A change counter for what a token check reads, as 'channels' is for
-- routing. Strict metering keeps token rows in each worker and passes the
-- counter it saw to the charge, which applies only while it is unchanged:
-- an edit to a token or its user (by our admin, by new-api's admin or by
-- plain SQL) makes the next charge look the token up again. Quota and usage
-- columns change with every request and do not count; the charge itself
-- checks the quota.
INSERT IGNORE INTO bltcy_meta (k, v) VALUES ('auth', 1);

CREATE OR REPLACE TRIGGER bltcy_tokens_au AFTER UPDATE ON tokens
FOR EACH ROW
  IF NOT (OLD.user_id <=> NEW.user_id AND OLD.`key` <=> NEW.`key`
      AND OLD.status <=> NEW.status AND OLD.name <=> NEW.name
      AND OLD.expired_time <=> NEW.expired_time
      AND OLD.unlimited_quota <=> NEW.unlimited_quota
      AND OLD.model_limits_enabled <=> NEW.model_limits_enabled
      AND OLD.model_limits <=> NEW.model_limits
      AND OLD.allow_ips <=> NEW.allow_ips AND OLD.`group` <=> NEW.`group`
      AND OLD.deleted_at <=> NEW.deleted_at) THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'auth';
  END IF;

CREATE OR REPLACE TRIGGER bltcy_tokens_ad AFTER DELETE ON tokens
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'auth';

CREATE OR REPLACE TRIGGER bltcy_users_au AFTER UPDATE ON users
FOR EACH ROW
  IF NOT (OLD.username <=> NEW.username AND OLD.role <=> NEW.role
      AND OLD.status <=> NEW.status AND OLD.`group` <=> NEW.`group`
      AND OLD.deleted_at <=> NEW.deleted_at) THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'auth';
  END IF;

CREATE OR REPLACE TRIGGER bltcy_users_ad AFTER DELETE ON users
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'auth';
