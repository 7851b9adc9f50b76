-- METERING=lease: a host leases blocks of a token's and user's quota,
-- spends them in shared memory, and writes usage in batches.

-- What each host holds: amount = leased and not yet written as usage.
CREATE TABLE IF NOT EXISTS bltcy_leases (
  host varchar(64) NOT NULL,
  token_id bigint NOT NULL,
  user_id bigint NOT NULL,
  unlimited tinyint(1) NOT NULL DEFAULT 0,
  amount bigint NOT NULL DEFAULT 0,
  last_grant bigint NOT NULL DEFAULT 0,
  updated_at bigint NOT NULL,
  PRIMARY KEY (host, token_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Operations already applied, so that one run again after a lost reply
-- (the relay retries once when the connection drops) changes nothing.
CREATE TABLE IF NOT EXISTS bltcy_applied (
  op varchar(80) NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (op),
  KEY idx_bltcy_applied_created_at (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Lease routines take row locks in one order everywhere: tokens, users,
-- then bltcy_leases (the batch flush does the same), so they cannot
-- deadlock one another.
CREATE OR REPLACE PROCEDURE bltcy_lease(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_token bigint, IN p_user bigint,
  IN p_unlimited tinyint, IN p_min bigint, IN p_want bigint, IN p_now bigint,
  IN p_op varchar(80) CHARSET utf8mb4)
BEGIN
  DECLARE v_tr, v_uq, v_grant bigint DEFAULT 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  INSERT IGNORE INTO bltcy_applied (op, created_at) VALUES (p_op, p_now);
  IF ROW_COUNT() = 1 THEN
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
  END IF;
  COMMIT;
END;

-- Only this host's master lowers its lease's amount, so reading it without
-- a lock before locking tokens and users is safe.
CREATE OR REPLACE PROCEDURE bltcy_lease_return(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_token bigint,
  IN p_amount bigint, IN p_close tinyint, IN p_now bigint,
  IN p_op varchar(80) CHARSET utf8mb4)
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
    INSERT IGNORE INTO bltcy_applied (op, created_at) VALUES (p_op, p_now);
    IF ROW_COUNT() = 0 THEN
      SET v_give = 0;
    END IF;
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

-- Write a batch of usage (a JSON array of settled requests): logs rows,
-- task ids, used counters, and the spent part of the host's leases; drop
-- leases spent to nothing (a lease's amount is never below what the host
-- still holds in memory).
CREATE OR REPLACE PROCEDURE bltcy_lease_flush(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_batch longtext CHARSET utf8mb4,
  IN p_op varchar(80) CHARSET utf8mb4)
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  DELETE FROM bltcy_applied WHERE created_at < UNIX_TIMESTAMP() - 86400 LIMIT 1000;
  INSERT IGNORE INTO bltcy_applied (op, created_at) VALUES (p_op, UNIX_TIMESTAMP());
  IF ROW_COUNT() = 1 THEN
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
  END IF;
  COMMIT;
END;

-- At start: what this host leased before it stopped without returning it
-- (a crash, a power loss) goes back; its unwritten usage is not charged.
CREATE OR REPLACE PROCEDURE bltcy_lease_reconcile(IN p_host varchar(64) CHARSET utf8mb4,
                                                  IN p_now bigint)
BEGIN
  DECLARE v_token, v_amount bigint;
  DECLARE v_done int DEFAULT 0;
  DECLARE cur CURSOR FOR
    SELECT token_id, amount FROM bltcy_leases WHERE host = p_host;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
  OPEN cur;
  give_back: LOOP
    FETCH cur INTO v_token, v_amount;
    IF v_done = 1 THEN LEAVE give_back; END IF;
    CALL bltcy_lease_return(p_host, v_token, v_amount, 1, p_now,
                            CONCAT('reconcile:', p_now, ':', p_host, ':', v_token));
  END LOOP;
  CLOSE cur;
  DELETE FROM bltcy_leases WHERE host = p_host;
END;
