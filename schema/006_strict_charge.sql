-- Strict metering with one hot-row transaction per request.
--
-- bltcy_charge does at once what new-api's pre-consume does: the token's
-- and user's quota and usage counters and the logs row, durable before
-- the request is forwarded. A success needs no further hot-row write: the
-- worker marks the charge done (in batches, or at once when the answer
-- named tasks or came from another channel), and the batch moves the
-- quota onto the channel's counter. A failure is refunded: counters
-- reversed, logs row removed. A charge whose worker died is kept, once.

ALTER TABLE bltcy_charges ADD COLUMN IF NOT EXISTS logs_id bigint NOT NULL DEFAULT 0;
ALTER TABLE bltcy_charges ADD COLUMN IF NOT EXISTS done tinyint(1) NOT NULL DEFAULT 0;

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

-- Charges reserved by an older version of the relay (no logs_id yet) are
-- still settled the old way.
CREATE OR REPLACE PROCEDURE bltcy_recover(IN p_host varchar(64) CHARSET utf8mb4,
                                          IN p_pid int, IN p_now bigint)
BEGIN
  DECLARE v_req varchar(40) CHARSET utf8mb4;
  DECLARE v_channel, v_created bigint;
  DECLARE v_done int DEFAULT 0;
  DECLARE cur CURSOR FOR
    SELECT request_id, channel_id, created_at FROM bltcy_charges
     WHERE host = p_host AND (p_pid = 0 OR pid = p_pid) AND logs_id = 0;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
  CALL bltcy_charge_recover(p_host, p_pid, 0);
  OPEN cur;
  settle_loop: LOOP
    FETCH cur INTO v_req, v_channel, v_created;
    IF v_done = 1 THEN LEAVE settle_loop; END IF;
    CALL bltcy_settle(v_req, v_channel, GREATEST(p_now - v_created, 0), p_now, 1, NULL);
  END LOOP;
  CLOSE cur;
END;

CREATE OR REPLACE PROCEDURE bltcy_recover_stale(IN p_before bigint, IN p_now bigint)
BEGIN
  DECLARE v_req varchar(40) CHARSET utf8mb4;
  DECLARE v_channel, v_created bigint;
  DECLARE v_done int DEFAULT 0;
  DECLARE cur CURSOR FOR
    SELECT request_id, channel_id, created_at FROM bltcy_charges
     WHERE created_at < p_before AND logs_id = 0;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
  CALL bltcy_charge_recover(NULL, 0, p_before);
  OPEN cur;
  settle_loop: LOOP
    FETCH cur INTO v_req, v_channel, v_created;
    IF v_done = 1 THEN LEAVE settle_loop; END IF;
    CALL bltcy_settle(v_req, v_channel, GREATEST(p_now - v_created, 0), p_now, 1, NULL);
  END LOOP;
  CLOSE cur;
END;

-- Lease routines take row locks in one order everywhere: tokens, users,
-- then bltcy_leases (the batch flush does the same), so they cannot
-- deadlock one another.
CREATE OR REPLACE PROCEDURE bltcy_lease(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_token bigint, IN p_user bigint,
  IN p_unlimited tinyint, IN p_min bigint, IN p_want bigint, IN p_now bigint)
BEGIN
  DECLARE v_tr, v_uq, v_grant bigint DEFAULT 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  SELECT IFNULL(remain_quota, 0) INTO v_tr FROM tokens WHERE id = p_token FOR UPDATE;
  SELECT IFNULL(quota, 0) INTO v_uq FROM users WHERE id = p_user FOR UPDATE;
  SET v_grant = IF(p_unlimited, LEAST(p_want, v_uq), LEAST(p_want, v_tr, v_uq));
  IF v_grant < p_min OR v_grant <= 0 THEN
    SET v_grant = 0;
  ELSE
    IF p_unlimited = 0 THEN
      UPDATE tokens SET remain_quota = remain_quota - v_grant WHERE id = p_token;
    END IF;
    UPDATE users SET quota = quota - v_grant WHERE id = p_user;
  END IF;
  IF v_grant > 0 THEN
    INSERT INTO bltcy_leases (host, token_id, user_id, unlimited, amount,
        last_grant, updated_at)
      VALUES (p_host, p_token, p_user, p_unlimited, v_grant, v_grant, p_now)
      ON DUPLICATE KEY UPDATE amount = amount + v_grant, last_grant = v_grant,
        updated_at = p_now;
  ELSE
    UPDATE bltcy_leases SET last_grant = 0, updated_at = p_now
      WHERE host = p_host AND token_id = p_token;
  END IF;
  COMMIT;
END;

-- Only this host's master lowers its lease's amount, so reading it without
-- a lock before locking tokens and users is safe.
CREATE OR REPLACE PROCEDURE bltcy_lease_return(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_token bigint,
  IN p_amount bigint, IN p_close tinyint, IN p_now bigint)
BEGIN
  DECLARE v_user, v_amount bigint;
  DECLARE v_unl tinyint;
  DECLARE v_give bigint;
  DECLARE v_found int DEFAULT 1;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_found = 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  SELECT user_id, unlimited, amount INTO v_user, v_unl, v_amount
    FROM bltcy_leases WHERE host = p_host AND token_id = p_token;
  IF v_found = 1 THEN
    SET v_give = GREATEST(LEAST(p_amount, v_amount), 0);
    START TRANSACTION;
    IF v_unl = 0 THEN
      UPDATE tokens SET remain_quota = remain_quota + v_give WHERE id = p_token;
    END IF;
    UPDATE users SET quota = quota + v_give WHERE id = v_user;
    UPDATE bltcy_leases SET amount = amount - v_give, updated_at = p_now
      WHERE host = p_host AND token_id = p_token;
    IF p_close THEN
      DELETE FROM bltcy_leases WHERE host = p_host AND token_id = p_token
        AND amount <= 0;
    END IF;
    COMMIT;
  END IF;
END;

-- bltcy_lease_flush, now also dropping leases spent to nothing (a lease's
-- amount is never below what the host still holds in memory).
CREATE OR REPLACE PROCEDURE bltcy_lease_flush(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_batch longtext CHARSET utf8mb4)
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  CREATE OR REPLACE TEMPORARY TABLE bltcy_batch AS
    SELECT * FROM JSON_TABLE(p_batch, '$[*]' COLUMNS (
      rid varchar(40) PATH '$.rid',
      u bigint PATH '$.u', t bigint PATH '$.t', c bigint PATH '$.c',
      q bigint PATH '$.q', ts bigint PATH '$.ts', ut bigint PATH '$.ut',
      m varchar(16) PATH '$.m', p varchar(512) PATH '$.p',
      ip varchar(64) PATH '$.ip', un varchar(191) PATH '$.un',
      tn varchar(191) PATH '$.tn', g varchar(64) PATH '$.g',
      s varchar(64) PATH '$.s', rc tinyint PATH '$.rc')) AS j;
  INSERT INTO logs (user_id, created_at, type, content, username, token_name,
      model_name, quota, prompt_tokens, completion_tokens, use_time,
      is_stream, channel_id, token_id, `group`, ip, other)
    SELECT u, ts, 2, CONCAT('Bltcy透传模式（', m, ' ', p, '），消费配额: ', q),
      un, tn, CONCAT(s, '_passthrough'), q, 0, 0, ut, 0, c, t, g, ip,
      CONCAT('{"request_id":"', rid, '"', IF(rc, ',"recovered":true', ''), '}')
    FROM bltcy_batch;
  INSERT IGNORE INTO bltcy_tasks (service, task_id, channel_id, user_id,
      token_id, created_at)
    SELECT j.s, j.k, j.c, j.u, j.t, j.ts
      FROM JSON_TABLE(p_batch, '$[*]' COLUMNS (
        s varchar(32) PATH '$.s', c bigint PATH '$.c', u bigint PATH '$.u',
        t bigint PATH '$.t', ts bigint PATH '$.ts',
        NESTED PATH '$.k[*]' COLUMNS (k varchar(191) PATH '$'))) AS j
     WHERE j.k IS NOT NULL AND j.k <> '';
  UPDATE tokens k JOIN (SELECT t, SUM(q) sq, MAX(ts) mts FROM bltcy_batch GROUP BY t) b
      ON k.id = b.t
    SET k.used_quota = k.used_quota + b.sq, k.accessed_time = b.mts;
  UPDATE users k JOIN (SELECT u, SUM(q) sq, COUNT(*) n FROM bltcy_batch GROUP BY u) b
      ON k.id = b.u
    SET k.used_quota = k.used_quota + b.sq, k.request_count = k.request_count + b.n;
  UPDATE channels k JOIN (SELECT c, SUM(q) sq FROM bltcy_batch GROUP BY c) b
      ON k.id = b.c
    SET k.used_quota = k.used_quota + b.sq;
  UPDATE bltcy_leases k JOIN (SELECT t, SUM(q) sq FROM bltcy_batch GROUP BY t) b
      ON k.host = p_host AND k.token_id = b.t
    SET k.amount = k.amount - b.sq;
  DELETE FROM bltcy_leases WHERE host = p_host AND amount <= 0;
  DROP TEMPORARY TABLE bltcy_batch;
  COMMIT;
END;
