-- Admin sessions end when their user changes. A session carries a stamp
-- of its user's password hash, role, status and generation; the trigger
-- counts the generation up on every change of those (by our admin, by
-- new-api's admin or by plain SQL), so a session ended by a disable or a
-- demotion stays ended when the user is enabled or promoted again.
CREATE TABLE IF NOT EXISTS bltcy_admin_epoch (
  user_id bigint NOT NULL,
  gen bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE OR REPLACE TRIGGER bltcy_users_au_sessions AFTER UPDATE ON users
FOR EACH ROW
  IF NOT (OLD.password <=> NEW.password AND OLD.role <=> NEW.role
      AND OLD.status <=> NEW.status
      AND OLD.deleted_at <=> NEW.deleted_at) THEN
    INSERT INTO bltcy_admin_epoch (user_id, gen) VALUES (NEW.id, 1)
      ON DUPLICATE KEY UPDATE gen = gen + 1;
  END IF;
