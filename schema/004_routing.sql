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
