-- bltcy-relay's own tables and routines. Everything here is prefixed bltcy_.

-- Change counters. 'channels' moves whenever a channel or ability that the
-- relay routes on changes, so the relay can cache them and still see an edit
-- (by our admin, by new-api's admin or by plain SQL) on the next request.
CREATE TABLE IF NOT EXISTS bltcy_meta (
  k varchar(64) NOT NULL,
  v bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (k)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT IGNORE INTO bltcy_meta (k, v) VALUES ('channels', 1);

CREATE OR REPLACE TRIGGER bltcy_channels_ai AFTER INSERT ON channels
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';

CREATE OR REPLACE TRIGGER bltcy_channels_ad AFTER DELETE ON channels
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';

-- Usage counters (used_quota, test_time, ...) change on every request and
-- must not flush the cache; only the columns routing reads do.
CREATE OR REPLACE TRIGGER bltcy_channels_au AFTER UPDATE ON channels
FOR EACH ROW
  IF NOT (OLD.type <=> NEW.type AND OLD.status <=> NEW.status
      AND OLD.`key` <=> NEW.`key` AND OLD.base_url <=> NEW.base_url
      AND OLD.models <=> NEW.models AND OLD.`group` <=> NEW.`group`
      AND OLD.priority <=> NEW.priority AND OLD.weight <=> NEW.weight
      AND OLD.setting <=> NEW.setting AND OLD.auto_ban <=> NEW.auto_ban
      AND OLD.name <=> NEW.name) THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
  END IF;

CREATE OR REPLACE TRIGGER bltcy_abilities_ai AFTER INSERT ON abilities
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';

CREATE OR REPLACE TRIGGER bltcy_abilities_ad AFTER DELETE ON abilities
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';

CREATE OR REPLACE TRIGGER bltcy_abilities_au AFTER UPDATE ON abilities
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';

-- A charge made before forwarding and not yet closed or refunded: the
-- record that lets the master, or the next start, close the charge of a
-- worker that died (bltcy_charge_recover).
CREATE TABLE IF NOT EXISTS bltcy_charges (
  request_id varchar(40) NOT NULL,
  host varchar(64) NOT NULL,
  pid int NOT NULL,
  token_id bigint NOT NULL,
  user_id bigint NOT NULL,
  channel_id bigint NOT NULL,
  quota bigint NOT NULL,
  unlimited tinyint(1) NOT NULL,
  created_at bigint NOT NULL,
  username varchar(191) NOT NULL DEFAULT '',
  token_name varchar(191) NOT NULL DEFAULT '',
  `group` varchar(64) NOT NULL DEFAULT '',
  model_name varchar(191) NOT NULL DEFAULT '',
  method varchar(16) NOT NULL DEFAULT '',
  path varchar(512) NOT NULL DEFAULT '',
  ip varchar(64) NOT NULL DEFAULT '',
  logs_id bigint NOT NULL DEFAULT 0,
  done tinyint(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (request_id),
  KEY idx_bltcy_charges_host_pid (host, pid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- (older versions of this table lack these)
ALTER TABLE bltcy_charges ADD COLUMN IF NOT EXISTS logs_id bigint NOT NULL DEFAULT 0;
ALTER TABLE bltcy_charges ADD COLUMN IF NOT EXISTS done tinyint(1) NOT NULL DEFAULT 0;

-- Strict metering with one hot-row transaction per request.
--
-- bltcy_charge does at once what new-api's pre-consume does: the token's
-- and user's quota and usage counters and the logs row, durable before
-- the request is forwarded. A success needs no further hot-row write: the
-- master closes settled charges in batches (bltcy_charge_close), which
-- records their task ids and moves their quota onto the channel's counter;
-- only an answer from another channel (failover) is recorded at once
-- (bltcy_charge_done). A failure is refunded: counters reversed, logs row
-- removed. A charge whose worker died is kept, once.

CREATE OR REPLACE PROCEDURE bltcy_charge(
  IN p_req varchar(40) CHARSET utf8mb4, IN p_host varchar(64) CHARSET utf8mb4,
  IN p_pid int, IN p_token bigint, IN p_user bigint, IN p_channel bigint,
  IN p_quota bigint, IN p_unlimited tinyint, IN p_now bigint,
  IN p_username varchar(191) CHARSET utf8mb4,
  IN p_token_name varchar(191) CHARSET utf8mb4,
  IN p_group varchar(64) CHARSET utf8mb4, IN p_model varchar(191) CHARSET utf8mb4,
  IN p_method varchar(16) CHARSET utf8mb4, IN p_path varchar(512) CHARSET utf8mb4,
  IN p_ip varchar(64) CHARSET utf8mb4)
BEGIN
  DECLARE v_n int DEFAULT 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  -- a retry after a lost reply charges nothing twice
  SELECT COUNT(*) INTO v_n FROM bltcy_charges WHERE request_id = p_req;
  IF v_n = 0 THEN
    INSERT INTO logs (user_id, created_at, type, content, username,
        token_name, model_name, quota, prompt_tokens, completion_tokens,
        use_time, is_stream, channel_id, token_id, `group`, ip, other)
      VALUES (p_user, p_now, 2,
        CONCAT('Bltcy透传模式（', p_method, ' ', LEFT(p_path, 512), '），消费配额: ', p_quota),
        p_username, p_token_name, p_model, p_quota, 0, 0, 0, 0,
        p_channel, p_token, p_group, p_ip,
        CONCAT('{"request_id":"', p_req, '"}'));
    INSERT INTO bltcy_charges (request_id, host, pid, token_id, user_id,
        channel_id, quota, unlimited, created_at, model_name, logs_id, done)
      VALUES (p_req, p_host, p_pid, p_token, p_user, p_channel, p_quota,
        p_unlimited, p_now, p_model, LAST_INSERT_ID(), 0);
    -- the hot rows last: their locks are held for the shortest time
    UPDATE tokens SET remain_quota = remain_quota - IF(p_unlimited, 0, p_quota),
           used_quota = used_quota + p_quota
     WHERE id = p_token AND (p_unlimited OR remain_quota >= p_quota);
    IF ROW_COUNT() <> 1 THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'insufficient_quota';
    END IF;
    UPDATE users SET quota = quota - p_quota, used_quota = used_quota + p_quota,
           request_count = request_count + 1
     WHERE id = p_user AND quota >= p_quota;
    IF ROW_COUNT() <> 1 THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'insufficient_quota';
    END IF;
  END IF;
  COMMIT;
END;

CREATE OR REPLACE PROCEDURE bltcy_charge_done(
  IN p_req varchar(40) CHARSET utf8mb4, IN p_channel bigint,
  IN p_use_time bigint, IN p_now bigint, IN p_tasks text CHARSET utf8mb4)
BEGIN
  DECLARE v_logs, v_user, v_token, v_channel bigint;
  DECLARE v_found int DEFAULT 1;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  SELECT logs_id, user_id, token_id, channel_id
    INTO v_logs, v_user, v_token, v_channel
    FROM bltcy_charges WHERE request_id = p_req FOR UPDATE;
  IF v_found = 1 THEN
    IF v_channel <> p_channel OR p_use_time > 0 THEN
      UPDATE logs SET channel_id = p_channel, use_time = p_use_time WHERE id = v_logs;
    END IF;
    UPDATE bltcy_charges SET done = 1, channel_id = p_channel
      WHERE request_id = p_req;
    IF p_tasks IS NOT NULL AND p_tasks <> '' THEN
      CALL bltcy_tasks_add(
        (SELECT SUBSTRING_INDEX(model_name, '_passthrough', 1) FROM logs WHERE id = v_logs),
        p_tasks, p_channel, v_user, v_token, p_now);
    END IF;
  END IF;
  COMMIT;
END;

-- Close settled charges in a batch: a JSON array of {"r": request id,
-- "u": use_time, "k": [task ids the answer carried]}. The quota moves onto each channel's used_quota and the
-- token's accessed_time moves on here, so those rows are written once a
-- batch, not once a request (and never for a refunded request).
CREATE OR REPLACE PROCEDURE bltcy_charge_close(IN p_batch text CHARSET utf8mb4)
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  CREATE OR REPLACE TEMPORARY TABLE bltcy_closing AS
    SELECT c.request_id, c.channel_id, c.token_id, c.quota, c.logs_id,
           c.created_at, j.u
      FROM JSON_TABLE(p_batch, '$[*]' COLUMNS (
             r varchar(40) PATH '$.r', u bigint PATH '$.u')) AS j
      JOIN bltcy_charges c ON c.request_id = j.r;
  INSERT IGNORE INTO bltcy_tasks (service, task_id, channel_id, user_id,
      token_id, created_at)
    SELECT SUBSTRING_INDEX(c.model_name, '_passthrough', 1), j.k, c.channel_id,
           c.user_id, c.token_id, c.created_at
      FROM JSON_TABLE(p_batch, '$[*]' COLUMNS (
             r varchar(40) PATH '$.r',
             NESTED PATH '$.k[*]' COLUMNS (k varchar(191) PATH '$'))) AS j
      JOIN bltcy_charges c ON c.request_id = j.r
     WHERE j.k IS NOT NULL AND j.k <> '';
  UPDATE logs l JOIN bltcy_closing k ON l.id = k.logs_id
     SET l.use_time = k.u WHERE k.u > 0;
  UPDATE tokens t JOIN (SELECT token_id, MAX(created_at) ts FROM bltcy_closing
                        GROUP BY token_id) s ON t.id = s.token_id
     SET t.accessed_time = GREATEST(IFNULL(t.accessed_time, 0), s.ts);
  UPDATE channels ch JOIN (SELECT channel_id, SUM(quota) sq FROM bltcy_closing
                           GROUP BY channel_id) s ON ch.id = s.channel_id
     SET ch.used_quota = ch.used_quota + s.sq;
  DELETE c FROM bltcy_charges c JOIN bltcy_closing k ON c.request_id = k.request_id;
  DROP TEMPORARY TABLE bltcy_closing;
  COMMIT;
END;

-- Give a charge back: the upstream failed or answered >= 400.
CREATE OR REPLACE PROCEDURE bltcy_charge_refund(IN p_req varchar(40) CHARSET utf8mb4)
BEGIN
  DECLARE v_token, v_user, v_quota, v_logs bigint;
  DECLARE v_unlimited tinyint;
  DECLARE v_found int DEFAULT 1;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  SELECT token_id, user_id, quota, unlimited, logs_id
    INTO v_token, v_user, v_quota, v_unlimited, v_logs
    FROM bltcy_charges WHERE request_id = p_req AND done = 0 FOR UPDATE;
  IF v_found = 1 THEN
    UPDATE tokens SET remain_quota = remain_quota + IF(v_unlimited, 0, v_quota),
           used_quota = used_quota - v_quota
     WHERE id = v_token;
    UPDATE users SET quota = quota + v_quota, used_quota = used_quota - v_quota,
           request_count = request_count - 1
     WHERE id = v_user;
    DELETE FROM logs WHERE id = v_logs;
    DELETE FROM bltcy_charges WHERE request_id = p_req;
  END IF;
  COMMIT;
END;

-- Charges a dead worker (p_pid) or an earlier run of this pool (p_pid 0)
-- left open, or (p_host NULL) any open before p_before. They stay charged,
-- once; the logs row of one that never finished says "recovered".
CREATE OR REPLACE PROCEDURE bltcy_charge_recover(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_pid int, IN p_before bigint)
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  CREATE OR REPLACE TEMPORARY TABLE bltcy_closing AS
    SELECT request_id, channel_id, quota, logs_id, done FROM bltcy_charges
     WHERE logs_id <> 0
       AND ((p_host IS NOT NULL AND host = p_host AND (p_pid = 0 OR pid = p_pid))
         OR (p_host IS NULL AND created_at < p_before));
  UPDATE logs l JOIN bltcy_closing k ON l.id = k.logs_id
     SET l.other = CONCAT('{"request_id":"', k.request_id, '","recovered":true}')
   WHERE k.done = 0;
  UPDATE channels ch JOIN (SELECT channel_id, SUM(quota) sq FROM bltcy_closing
                           GROUP BY channel_id) s ON ch.id = s.channel_id
     SET ch.used_quota = ch.used_quota + s.sq;
  DELETE c FROM bltcy_charges c JOIN bltcy_closing k ON c.request_id = k.request_id;
  DROP TEMPORARY TABLE bltcy_closing;
  COMMIT;
END;

-- The master's entry points: a dead worker (p_pid) or an earlier run of
-- this pool (p_pid 0); any host's charges older than p_before (bltcy-ctl).
CREATE OR REPLACE PROCEDURE bltcy_recover(IN p_host varchar(64) CHARSET utf8mb4,
                                          IN p_pid int, IN p_now bigint)
BEGIN
  CALL bltcy_charge_recover(p_host, p_pid, 0);
END;

CREATE OR REPLACE PROCEDURE bltcy_recover_stale(IN p_before bigint, IN p_now bigint)
BEGIN
  CALL bltcy_charge_recover(NULL, 0, p_before);
END;
