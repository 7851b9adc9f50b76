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

-- A charge reserved before forwarding and not yet settled or refunded.
-- It carries what the logs row needs, so a crashed worker's charge can be
-- settled by someone else (bltcy_recover).
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
  PRIMARY KEY (request_id),
  KEY idx_bltcy_charges_host_pid (host, pid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Reserve p_quota on the token (unless unlimited) and the user, and record
-- the charge, atomically. Signals SQLSTATE 45000 'insufficient_quota' when
-- either cannot pay. Idempotent per request id: a retry after a lost reply
-- charges nothing twice.
CREATE OR REPLACE PROCEDURE bltcy_reserve(
  IN p_req varchar(40) CHARSET utf8mb4, IN p_host varchar(64) CHARSET utf8mb4, IN p_pid int,
  IN p_token bigint, IN p_user bigint, IN p_channel bigint,
  IN p_quota bigint, IN p_unlimited tinyint, IN p_now bigint,
  IN p_username varchar(191) CHARSET utf8mb4, IN p_token_name varchar(191) CHARSET utf8mb4,
  IN p_group varchar(64) CHARSET utf8mb4, IN p_model varchar(191) CHARSET utf8mb4, IN p_method varchar(16) CHARSET utf8mb4,
  IN p_path varchar(512) CHARSET utf8mb4, IN p_ip varchar(64) CHARSET utf8mb4)
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  INSERT IGNORE INTO bltcy_charges (request_id, host, pid, token_id, user_id,
      channel_id, quota, unlimited, created_at, username, token_name,
      `group`, model_name, method, path, ip)
    VALUES (p_req, p_host, p_pid, p_token, p_user, p_channel, p_quota,
      p_unlimited, p_now, p_username, p_token_name, p_group, p_model,
      p_method, LEFT(p_path, 512), p_ip);
  IF ROW_COUNT() = 1 THEN
    IF p_unlimited = 0 THEN
      UPDATE tokens SET remain_quota = remain_quota - p_quota
        WHERE id = p_token AND remain_quota >= p_quota;
      IF ROW_COUNT() <> 1 THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'insufficient_quota';
      END IF;
    END IF;
    UPDATE users SET quota = quota - p_quota
      WHERE id = p_user AND quota >= p_quota;
    IF ROW_COUNT() <> 1 THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'insufficient_quota';
    END IF;
  END IF;
  COMMIT;
END;

-- Make a reserved charge final: usage counters, one logs row (type 2), and
-- the reservation removed, atomically. p_channel is the channel that
-- answered. A request id with no reservation is a no-op (already settled).
CREATE OR REPLACE PROCEDURE bltcy_settle(
  IN p_req varchar(40) CHARSET utf8mb4, IN p_channel bigint, IN p_use_time bigint,
  IN p_now bigint, IN p_recovered tinyint)
BEGIN
  DECLARE v_token, v_user, v_quota bigint;
  DECLARE v_username, v_token_name, v_model varchar(191) CHARSET utf8mb4;
  DECLARE v_group varchar(64) CHARSET utf8mb4;
  DECLARE v_method varchar(16) CHARSET utf8mb4;
  DECLARE v_path varchar(512) CHARSET utf8mb4;
  DECLARE v_ip varchar(64) CHARSET utf8mb4;
  DECLARE v_found int DEFAULT 1;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  SELECT token_id, user_id, quota, username, token_name, model_name,
         `group`, method, path, ip
    INTO v_token, v_user, v_quota, v_username, v_token_name, v_model,
         v_group, v_method, v_path, v_ip
    FROM bltcy_charges WHERE request_id = p_req FOR UPDATE;
  IF v_found = 1 THEN
    UPDATE tokens SET used_quota = used_quota + v_quota, accessed_time = p_now
      WHERE id = v_token;
    UPDATE users SET used_quota = used_quota + v_quota,
                     request_count = request_count + 1
      WHERE id = v_user;
    UPDATE channels SET used_quota = used_quota + v_quota WHERE id = p_channel;
    INSERT INTO logs (user_id, created_at, type, content, username,
        token_name, model_name, quota, prompt_tokens, completion_tokens,
        use_time, is_stream, channel_id, token_id, `group`, ip, other)
      VALUES (v_user, p_now, 2,
        CONCAT('Bltcy透传模式（', v_method, ' ', v_path, '），消费配额: ', v_quota),
        v_username, v_token_name, v_model, v_quota, 0, 0, p_use_time, 0,
        p_channel, v_token, v_group, v_ip,
        CONCAT('{"request_id":"', p_req, '"',
               IF(p_recovered, ',"recovered":true', ''), '}'));
    DELETE FROM bltcy_charges WHERE request_id = p_req;
  END IF;
  COMMIT;
END;

-- Give a reserved charge back (upstream failed or answered >= 400).
-- A request id with no reservation is a no-op.
CREATE OR REPLACE PROCEDURE bltcy_refund(IN p_req varchar(40) CHARSET utf8mb4)
BEGIN
  DECLARE v_token, v_user, v_quota bigint;
  DECLARE v_unlimited tinyint;
  DECLARE v_found int DEFAULT 1;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  SELECT token_id, user_id, quota, unlimited
    INTO v_token, v_user, v_quota, v_unlimited
    FROM bltcy_charges WHERE request_id = p_req FOR UPDATE;
  IF v_found = 1 THEN
    IF v_unlimited = 0 THEN
      UPDATE tokens SET remain_quota = remain_quota + v_quota WHERE id = v_token;
    END IF;
    UPDATE users SET quota = quota + v_quota WHERE id = v_user;
    DELETE FROM bltcy_charges WHERE request_id = p_req;
  END IF;
  COMMIT;
END;

-- Settle what a dead worker (p_pid) or a crashed host (p_pid = 0) left in
-- flight. The upstream may have done the work, so the charge is kept, once,
-- and its logs row says "recovered". Returns nothing; idempotent.
CREATE OR REPLACE PROCEDURE bltcy_recover(IN p_host varchar(64) CHARSET utf8mb4, IN p_pid int,
                                          IN p_now bigint)
BEGIN
  DECLARE v_req varchar(40) CHARSET utf8mb4;
  DECLARE v_channel, v_created bigint;
  DECLARE v_done int DEFAULT 0;
  DECLARE cur CURSOR FOR
    SELECT request_id, channel_id, created_at FROM bltcy_charges
     WHERE host = p_host AND (p_pid = 0 OR pid = p_pid);
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
  OPEN cur;
  settle_loop: LOOP
    FETCH cur INTO v_req, v_channel, v_created;
    IF v_done = 1 THEN LEAVE settle_loop; END IF;
    CALL bltcy_settle(v_req, v_channel, GREATEST(p_now - v_created, 0), p_now, 1);
  END LOOP;
  CLOSE cur;
END;

-- Settle every charge reserved before p_before on any host: what no live
-- request can still hold (older than RELAY_TIMEOUT). bltcy-ctl recover.
CREATE OR REPLACE PROCEDURE bltcy_recover_stale(IN p_before bigint, IN p_now bigint)
BEGIN
  DECLARE v_req varchar(40) CHARSET utf8mb4;
  DECLARE v_channel, v_created bigint;
  DECLARE v_done int DEFAULT 0;
  DECLARE cur CURSOR FOR
    SELECT request_id, channel_id, created_at FROM bltcy_charges
     WHERE created_at < p_before;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
  OPEN cur;
  settle_loop: LOOP
    FETCH cur INTO v_req, v_channel, v_created;
    IF v_done = 1 THEN LEAVE settle_loop; END IF;
    CALL bltcy_settle(v_req, v_channel, GREATEST(p_now - v_created, 0), p_now, 1);
  END LOOP;
  CLOSE cur;
END;
