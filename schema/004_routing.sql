-- Task affinity and ownership: which channel created a task, for whom.

CREATE TABLE IF NOT EXISTS bltcy_tasks (
  service varchar(32) NOT NULL,
  task_id varchar(191) NOT NULL,
  channel_id bigint NOT NULL,
  user_id bigint NOT NULL,
  token_id bigint NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (service, task_id),
  KEY idx_bltcy_tasks_created_at (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Record the comma-separated task ids p_tasks as created on p_channel for
-- p_user. The first owner of an id keeps it.
CREATE OR REPLACE PROCEDURE bltcy_tasks_add(
  IN p_service varchar(32) CHARSET utf8mb4, IN p_tasks text CHARSET utf8mb4,
  IN p_channel bigint, IN p_user bigint, IN p_token bigint, IN p_now bigint)
BEGIN
  DECLARE v_rest text CHARSET utf8mb4 DEFAULT p_tasks;
  DECLARE v_id varchar(191) CHARSET utf8mb4;
  WHILE v_rest IS NOT NULL AND v_rest <> '' DO
    SET v_id = SUBSTRING_INDEX(v_rest, ',', 1);
    SET v_rest = IF(LOCATE(',', v_rest) > 0,
                    SUBSTRING(v_rest, LOCATE(',', v_rest) + 1), '');
    IF v_id <> '' THEN
      INSERT IGNORE INTO bltcy_tasks (service, task_id, channel_id, user_id,
          token_id, created_at)
        VALUES (p_service, v_id, p_channel, p_user, p_token, p_now);
    END IF;
  END WHILE;
END;

-- bltcy_settle, now also recording the task ids the answer carried.
CREATE OR REPLACE PROCEDURE bltcy_settle(
  IN p_req varchar(40) CHARSET utf8mb4, IN p_channel bigint,
  IN p_use_time bigint, IN p_now bigint, IN p_recovered tinyint,
  IN p_tasks text CHARSET utf8mb4)
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
    IF p_tasks IS NOT NULL AND p_tasks <> '' THEN
      CALL bltcy_tasks_add(SUBSTRING_INDEX(v_model, '_passthrough', 1),
                           p_tasks, p_channel, v_user, v_token, p_now);
    END IF;
  END IF;
  COMMIT;
END;

CREATE OR REPLACE PROCEDURE bltcy_recover(IN p_host varchar(64) CHARSET utf8mb4,
                                          IN p_pid int, IN p_now bigint)
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
     WHERE created_at < p_before;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
  OPEN cur;
  settle_loop: LOOP
    FETCH cur INTO v_req, v_channel, v_created;
    IF v_done = 1 THEN LEAVE settle_loop; END IF;
    CALL bltcy_settle(v_req, v_channel, GREATEST(p_now - v_created, 0), p_now, 1, NULL);
  END LOOP;
  CLOSE cur;
END;

-- new-api's automatic disabling: an upstream that refuses the channel's
-- key takes the channel out (status 3) with a type-5 log row saying why.
CREATE OR REPLACE PROCEDURE bltcy_auto_ban(IN p_channel bigint, IN p_now bigint,
                                           IN p_reason varchar(255) CHARSET utf8mb4)
BEGIN
  DECLARE v_name varchar(191) CHARSET utf8mb4 DEFAULT '';
  UPDATE channels SET status = 3 WHERE id = p_channel AND status = 1 AND auto_ban = 1;
  IF ROW_COUNT() = 1 THEN
    SELECT IFNULL(name, '') INTO v_name FROM channels WHERE id = p_channel;
    INSERT INTO logs (user_id, created_at, type, content, username, token_name,
        model_name, quota, channel_id, token_id, `group`, ip, other)
      VALUES (0, p_now, 5,
        CONCAT('通道「', v_name, '」（#', p_channel, '）已被自动禁用，原因：', p_reason),
        '', '', '', 0, p_channel, 0, '', '', '');
  END IF;
END;
