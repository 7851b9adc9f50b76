-- Limits an operator sets on a token or a user (admin, bltcy-ctl limit):
-- requests in flight at once, open jobs at once (tasks submitted and not
-- finished) and requests per minute; 0 is no limit. scope 't' is a
-- token (id tokens.id), 'u' a user (id users.id).
CREATE TABLE IF NOT EXISTS bltcy_limits (
  scope char(1) NOT NULL,
  id bigint NOT NULL,
  in_flight int NOT NULL DEFAULT 0,
  tasks int NOT NULL DEFAULT 0,
  rpm int NOT NULL DEFAULT 0,
  updated_at bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The limits come with the token row a worker keeps, so an edit moves
-- the counter the kept rows are checked against.
CREATE OR REPLACE TRIGGER bltcy_limits_ai AFTER INSERT ON bltcy_limits
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'auth';
CREATE OR REPLACE TRIGGER bltcy_limits_au AFTER UPDATE ON bltcy_limits
FOR EACH ROW
  IF NOT (OLD.scope <=> NEW.scope AND OLD.id <=> NEW.id
      AND OLD.in_flight <=> NEW.in_flight AND OLD.tasks <=> NEW.tasks
      AND OLD.rpm <=> NEW.rpm) THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'auth';
  END IF;
CREATE OR REPLACE TRIGGER bltcy_limits_ad AFTER DELETE ON bltcy_limits
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'auth';

-- new-api's options the relay reads with the channels: prices, request
-- rates, automatic disabling and enabling. An edit is seen on the next
-- request, as a price edit is.
CREATE OR REPLACE TRIGGER bltcy_options_ai AFTER INSERT ON options
FOR EACH ROW
  IF NEW.`key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit')
     OR NEW.`key` LIKE 'ModelRequestRateLimit%'
     OR NEW.`key` LIKE 'Automatic%' THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
  END IF;
CREATE OR REPLACE TRIGGER bltcy_options_au AFTER UPDATE ON options
FOR EACH ROW
  IF (OLD.`key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit')
      OR OLD.`key` LIKE 'ModelRequestRateLimit%'
      OR OLD.`key` LIKE 'Automatic%'
      OR NEW.`key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit')
      OR NEW.`key` LIKE 'ModelRequestRateLimit%'
      OR NEW.`key` LIKE 'Automatic%')
     AND NOT (OLD.value <=> NEW.value AND OLD.`key` <=> NEW.`key`) THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
  END IF;
CREATE OR REPLACE TRIGGER bltcy_options_ad AFTER DELETE ON options
FOR EACH ROW
  IF OLD.`key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit')
     OR OLD.`key` LIKE 'ModelRequestRateLimit%'
     OR OLD.`key` LIKE 'Automatic%' THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
  END IF;
