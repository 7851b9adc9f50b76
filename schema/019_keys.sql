-- Keys the upstream refuses leave rotation, one at a time, and come back
-- when a probe passes (fcgi/keys.c).
--
-- A key's state is kept where new-api keeps it, so new-api's admin shows
-- the same: in channels.channel_info (new-api's ChannelInfo, a JSON
-- object), multi_key_status_list maps a key's line index ("0", "1", ...)
-- to its status (absent or 1 enabled, 2 disabled by hand, 3 disabled
-- automatically), multi_key_disabled_reason and multi_key_disabled_time
-- to why and when. A channel of one key is the key: status 3 with
-- other_info's status_reason and status_time, as new-api writes them.
-- A channel whose keys are all disabled is status 3 too.

ALTER TABLE channels ADD COLUMN IF NOT EXISTS channel_info json DEFAULT NULL;

-- A key's state moves the channels counter, so every worker of every
-- host reads it on its next request.
CREATE OR REPLACE TRIGGER bltcy_channels_au AFTER UPDATE ON channels
FOR EACH ROW
  IF NOT (OLD.type <=> NEW.type AND OLD.status <=> NEW.status
      AND OLD.`key` <=> NEW.`key` AND OLD.base_url <=> NEW.base_url
      AND OLD.models <=> NEW.models AND OLD.`group` <=> NEW.`group`
      AND OLD.priority <=> NEW.priority AND OLD.weight <=> NEW.weight
      AND OLD.setting <=> NEW.setting AND OLD.auto_ban <=> NEW.auto_ban
      AND OLD.name <=> NEW.name AND OLD.channel_info <=> NEW.channel_info) THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
  END IF;

-- How a service's key is probed: one cheap authenticated request to the
-- channel's Base URL and the statuses that pass (new-api's range syntax,
-- "200-299,404"). A disabled key whose probe passes, with no
-- AutomaticDisableKeywords keyword in the answer, is enabled again. An
-- empty probe_path: the service's keys are never probed.
ALTER TABLE bltcy_task_kinds
  ADD COLUMN IF NOT EXISTS probe_method varchar(8) NOT NULL DEFAULT 'GET',
  ADD COLUMN IF NOT EXISTS probe_path varchar(255) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS probe_pass varchar(64) NOT NULL DEFAULT '200-299';

-- The old gateway is new-api: its model list needs a valid key with
-- quota left (a revoked or exhausted one is refused), and costs nothing.
UPDATE bltcy_task_kinds SET probe_path = '/v1/models'
  WHERE probe_path = '' AND service IN ('kling', 'runway', 'suno', 'pika', 'jimeng');

-- Which host probes next (bltcy_meta 'key_probe': the time after which
-- the next probe pass may start); the one that moves it first.
INSERT IGNORE INTO bltcy_meta (k, v) VALUES ('key_probe', 0);

-- Open jobs per key (scope 'k', id the channel, key_hash its key's): the
-- admin's channels page reads them. Made here too so the page works
-- before the capacity migration.
CREATE TABLE IF NOT EXISTS bltcy_places (
  scope char(1) NOT NULL,
  id bigint NOT NULL,
  key_hash varchar(16) NOT NULL,
  open int NOT NULL DEFAULT 0,
  granted int NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, id, key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

DROP PROCEDURE IF EXISTS bltcy_auto_ban;

-- new-api's ChannelInfo of a channel of p_size keys, with the three maps
-- present as objects, whatever the column held.
CREATE OR REPLACE FUNCTION bltcy_key_info(p_info longtext CHARSET utf8mb4,
                                          p_size int)
RETURNS longtext CHARSET utf8mb4 DETERMINISTIC
BEGIN
  DECLARE v longtext CHARSET utf8mb4 DEFAULT
    IF(p_info IS NOT NULL AND JSON_VALID(p_info) AND
       JSON_TYPE(p_info) = 'OBJECT', p_info, '{}');
  IF IFNULL(JSON_TYPE(JSON_EXTRACT(v, '$.multi_key_status_list')), '') <> 'OBJECT' THEN
    SET v = JSON_SET(v, '$.multi_key_status_list', JSON_OBJECT());
  END IF;
  IF IFNULL(JSON_TYPE(JSON_EXTRACT(v, '$.multi_key_disabled_reason')), '') <> 'OBJECT' THEN
    SET v = JSON_SET(v, '$.multi_key_disabled_reason', JSON_OBJECT());
  END IF;
  IF IFNULL(JSON_TYPE(JSON_EXTRACT(v, '$.multi_key_disabled_time')), '') <> 'OBJECT' THEN
    SET v = JSON_SET(v, '$.multi_key_disabled_time', JSON_OBJECT());
  END IF;
  IF JSON_EXTRACT(v, '$.multi_key_mode') IS NULL THEN
    SET v = JSON_SET(v, '$.multi_key_mode', 'polling');
  END IF;
  RETURN JSON_SET(v, '$.is_multi_key', true, '$.multi_key_size', p_size);
END;

-- A channel's other_info with new-api's status_reason and status_time.
CREATE OR REPLACE FUNCTION bltcy_status_info(p_other longtext CHARSET utf8mb4,
    p_reason varchar(255) CHARSET utf8mb4, p_now bigint)
RETURNS longtext CHARSET utf8mb4 DETERMINISTIC
RETURN JSON_SET(IF(p_other IS NOT NULL AND JSON_VALID(p_other) AND
                   JSON_TYPE(p_other) = 'OBJECT', p_other, '{}'),
                '$.status_reason', p_reason, '$.status_time', p_now);

-- The upstream refused key p_index (its line in the key column) of
-- channel p_channel: the key is disabled (3) with why and when, and the
-- channel too (status 3, its abilities off, as new-api) when it has one
-- key or no other key is left. p_lines are the line indexes of the
-- channel's keys, comma-separated, p_size new-api's count of them. Only
-- while the channel is enabled and its auto_ban is on; a key already
-- disabled stays as it was, so a second call changes nothing. A type-5
-- logs row says what was disabled and why.
CREATE OR REPLACE PROCEDURE bltcy_key_ban(IN p_channel bigint, IN p_index int,
    IN p_lines varchar(8192), IN p_size int, IN p_now bigint,
    IN p_reason varchar(255) CHARSET utf8mb4)
BEGIN
  DECLARE v_status bigint DEFAULT NULL;
  DECLARE v_ban bigint DEFAULT NULL;
  DECLARE v_name varchar(191) CHARSET utf8mb4 DEFAULT '';
  DECLARE v_info longtext CHARSET utf8mb4;
  DECLARE v_other longtext CHARSET utf8mb4;
  DECLARE v_key varchar(40);
  DECLARE v_rest varchar(8192) DEFAULT p_lines;
  DECLARE v_left int DEFAULT 0;
  DECLARE v_what varchar(64) CHARSET utf8mb4 DEFAULT '';
  SELECT status, auto_ban, IFNULL(name, ''), channel_info, other_info
    INTO v_status, v_ban, v_name, v_info, v_other
    FROM channels WHERE id = p_channel FOR UPDATE;
  IF v_status = 1 AND v_ban = 1 THEN
    IF p_size <= 1 THEN
      UPDATE channels SET status = 3,
          other_info = bltcy_status_info(v_other, p_reason, p_now)
        WHERE id = p_channel;
      UPDATE abilities SET enabled = 0 WHERE channel_id = p_channel;
      SET v_what = '';
    ELSE
      SET v_info = bltcy_key_info(v_info, p_size);
      SET v_key = CONCAT('"', p_index, '"');
      IF JSON_EXTRACT(v_info, CONCAT('$.multi_key_status_list.', v_key)) IS NULL THEN
        SET v_info = JSON_SET(v_info,
            CONCAT('$.multi_key_status_list.', v_key), 3,
            CONCAT('$.multi_key_disabled_reason.', v_key), p_reason,
            CONCAT('$.multi_key_disabled_time.', v_key), p_now);
        WHILE v_rest <> '' DO
          IF JSON_EXTRACT(v_info, CONCAT('$.multi_key_status_list."',
              SUBSTRING_INDEX(v_rest, ',', 1), '"')) IS NULL THEN
            SET v_left = v_left + 1;
          END IF;
          SET v_rest = IF(LOCATE(',', v_rest) > 0,
                          SUBSTRING(v_rest, LOCATE(',', v_rest) + 1), '');
        END WHILE;
        UPDATE channels SET channel_info = v_info,
            status = IF(v_left = 0, 3, status),
            other_info = IF(v_left = 0, bltcy_status_info(v_other,
                'All keys are disabled', p_now), other_info)
          WHERE id = p_channel;
        IF v_left = 0 THEN
          UPDATE abilities SET enabled = 0 WHERE channel_id = p_channel;
        END IF;
        SET v_what = CONCAT('的密钥 #', p_index + 1, ' ');
      ELSE
        SET v_status = NULL;
      END IF;
    END IF;
    IF v_status IS NOT NULL THEN
      INSERT INTO logs (user_id, created_at, type, content, username,
          token_name, model_name, quota, channel_id, token_id, `group`, ip,
          other)
        VALUES (0, p_now, 5,
          CONCAT('通道「', v_name, '」（#', p_channel, '）', v_what,
                 '已被自动禁用，原因：', p_reason),
          '', '', '', 0, p_channel, 0, '', '', '');
    END IF;
  END IF;
END;

-- A probe of key p_index of channel p_channel passed: the key is enabled
-- again if it was disabled automatically (3; one disabled by hand stays
-- so), and the channel with it if the channel was (status 3). 1 row
-- selected: whether anything changed. A second call changes nothing.
CREATE OR REPLACE PROCEDURE bltcy_key_enable(IN p_channel bigint,
    IN p_index int, IN p_size int, IN p_now bigint)
BEGIN
  DECLARE v_status bigint DEFAULT NULL;
  DECLARE v_info longtext CHARSET utf8mb4;
  DECLARE v_other longtext CHARSET utf8mb4;
  DECLARE v_path varchar(80);
  DECLARE v_done int DEFAULT 0;
  SELECT status, channel_info, other_info INTO v_status, v_info, v_other
    FROM channels WHERE id = p_channel FOR UPDATE;
  IF p_size <= 1 THEN
    IF v_status = 3 THEN
      UPDATE channels SET status = 1,
          other_info = bltcy_status_info(v_other, '', p_now)
        WHERE id = p_channel;
      UPDATE abilities SET enabled = 1 WHERE channel_id = p_channel;
      SET v_done = 1;
    END IF;
  ELSEIF v_info IS NOT NULL AND JSON_VALID(v_info) THEN
    SET v_path = CONCAT('$.multi_key_status_list."', p_index, '"');
    IF JSON_VALUE(v_info, v_path) = '3' THEN
      UPDATE channels SET channel_info = JSON_REMOVE(v_info, v_path),
          status = IF(v_status = 3, 1, status),
          other_info = IF(v_status = 3, bltcy_status_info(v_other, '', p_now),
                          other_info)
        WHERE id = p_channel;
      IF v_status = 3 THEN
        UPDATE abilities SET enabled = 1 WHERE channel_id = p_channel;
      END IF;
      SET v_done = 1;
    END IF;
  END IF;
  SELECT v_done;
END;
