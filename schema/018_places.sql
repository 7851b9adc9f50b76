-- Open-job caps: a token's or a user's open jobs (bltcy_limits.tasks) and
-- a channel key's (the channel's MaxTasks), exact across hosts.
--
-- A place is the right to one open job. bltcy_places has a row per capped
-- scope: 't' a token (id tokens.id), 'u' a user (id users.id), 'k' a key
-- of a channel (id channels.id, key_hash as bltcy_tasks.key_hash; '' for
-- 't' and 'u'). open counts the recorded unfinished tasks holding a place
-- of it, granted the places hosts hold (in flight, or spare in a host's
-- memory: bltcy_place_grants says which host). Every take keeps
-- open + granted <= the cap it was made under.
CREATE TABLE IF NOT EXISTS bltcy_places (
  scope char(1) NOT NULL,
  id bigint NOT NULL,
  key_hash varchar(16) NOT NULL DEFAULT '',
  open int NOT NULL DEFAULT 0,
  granted int NOT NULL DEFAULT 0,
  updated_at bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, id, key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- What each host holds of granted; last_op and last_n are its last take,
-- so that a take run again after a lost reply reads what it got.
CREATE TABLE IF NOT EXISTS bltcy_place_grants (
  host varchar(64) NOT NULL,
  scope char(1) NOT NULL,
  id bigint NOT NULL,
  key_hash varchar(16) NOT NULL DEFAULT '',
  n int NOT NULL DEFAULT 0,
  last_op varchar(80) NOT NULL DEFAULT '',
  last_n int NOT NULL DEFAULT 0,
  PRIMARY KEY (host, scope, id, key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Which places a task holds: 1 its token's, 2 its user's, 4 its key's.
ALTER TABLE bltcy_tasks
  ADD COLUMN IF NOT EXISTS places tinyint NOT NULL DEFAULT 0;

-- A task written holding places is open in them: the usage writer moves
-- them from the host's grant to open for the rows its batch inserted, in
-- the batch's transaction, one statement a scope (not a trigger a row);
-- bltcy_tasks_add_places below likewise. A task that leaves
-- submitted/running, or is deleted unfinished, frees them at once.
CREATE OR REPLACE TRIGGER bltcy_tasks_places_bu BEFORE UPDATE ON bltcy_tasks
FOR EACH ROW
BEGIN
  IF OLD.places <> 0 AND OLD.state IN ('submitted', 'running')
     AND NEW.state NOT IN ('submitted', 'running') THEN
    IF OLD.places & 1 THEN
      UPDATE bltcy_places SET open = GREATEST(open - 1, 0)
        WHERE scope = 't' AND id = OLD.token_id AND key_hash = '';
    END IF;
    IF OLD.places & 2 THEN
      UPDATE bltcy_places SET open = GREATEST(open - 1, 0)
        WHERE scope = 'u' AND id = OLD.user_id AND key_hash = '';
    END IF;
    IF OLD.places & 4 THEN
      UPDATE bltcy_places SET open = GREATEST(open - 1, 0)
        WHERE scope = 'k' AND id = OLD.channel_id AND key_hash = OLD.key_hash;
    END IF;
    SET NEW.places = 0;
  END IF;
END;

CREATE OR REPLACE TRIGGER bltcy_tasks_places_ad AFTER DELETE ON bltcy_tasks
FOR EACH ROW
BEGIN
  IF OLD.places <> 0 AND OLD.state IN ('submitted', 'running') THEN
    IF OLD.places & 1 THEN
      UPDATE bltcy_places SET open = GREATEST(open - 1, 0)
        WHERE scope = 't' AND id = OLD.token_id AND key_hash = '';
    END IF;
    IF OLD.places & 2 THEN
      UPDATE bltcy_places SET open = GREATEST(open - 1, 0)
        WHERE scope = 'u' AND id = OLD.user_id AND key_hash = '';
    END IF;
    IF OLD.places & 4 THEN
      UPDATE bltcy_places SET open = GREATEST(open - 1, 0)
        WHERE scope = 'k' AND id = OLD.channel_id AND key_hash = OLD.key_hash;
    END IF;
  END IF;
END;

-- Take up to p_want places of (p_scope, p_id, p_key) for p_host under
-- p_cap, in one transaction. A row is made on first use with open = the
-- scope's open tasks, which are marked as holding a place of it, so a cap
-- set on a busy token counts the jobs it already has. At most a quarter
-- of the room left goes to one take (at least one place), so that one
-- host does not sit on what another needs. Run again under the same p_op
-- it takes nothing more; bltcy_place_grants.last_n says what the first
-- run got.
CREATE OR REPLACE PROCEDURE bltcy_place_take(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_scope char(1) CHARSET utf8mb4,
  IN p_id bigint, IN p_key varchar(16) CHARSET utf8mb4, IN p_cap int,
  IN p_want int, IN p_now bigint, IN p_op varchar(80) CHARSET utf8mb4)
BEGIN
  DECLARE v_open, v_granted, v_room, v_n int DEFAULT 0;
  DECLARE v_bit int DEFAULT IF(p_scope = 't', 1, IF(p_scope = 'u', 2, 4));
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  INSERT IGNORE INTO bltcy_applied (op, created_at) VALUES (p_op, p_now);
  IF ROW_COUNT() = 1 THEN
    INSERT IGNORE INTO bltcy_places (scope, id, key_hash, open, granted,
        updated_at) VALUES (p_scope, p_id, p_key, 0, 0, p_now);
    IF ROW_COUNT() = 1 THEN
      UPDATE bltcy_tasks SET places = places | v_bit
        WHERE state IN ('submitted', 'running')
          AND CASE p_scope WHEN 't' THEN token_id = p_id
                           WHEN 'u' THEN user_id = p_id
                           ELSE channel_id = p_id AND key_hash = p_key END;
      SELECT COUNT(*) INTO v_open FROM bltcy_tasks
        WHERE state IN ('submitted', 'running') AND places & v_bit
          AND CASE p_scope WHEN 't' THEN token_id = p_id
                           WHEN 'u' THEN user_id = p_id
                           ELSE channel_id = p_id AND key_hash = p_key END;
      UPDATE bltcy_places SET open = v_open
        WHERE scope = p_scope AND id = p_id AND key_hash = p_key;
    END IF;
    SELECT open, granted INTO v_open, v_granted FROM bltcy_places
      WHERE scope = p_scope AND id = p_id AND key_hash = p_key FOR UPDATE;
    SET v_room = GREATEST(p_cap - v_open - v_granted, 0);
    SET v_n = LEAST(GREATEST(p_want, 0), v_room, GREATEST(v_room DIV 4, 1));
    UPDATE bltcy_places SET granted = granted + v_n, updated_at = p_now
      WHERE scope = p_scope AND id = p_id AND key_hash = p_key;
    INSERT INTO bltcy_place_grants (host, scope, id, key_hash, n, last_op,
        last_n) VALUES (p_host, p_scope, p_id, p_key, v_n, p_op, v_n)
      ON DUPLICATE KEY UPDATE n = n + v_n, last_op = p_op, last_n = v_n;
  END IF;
  COMMIT;
END;

-- A host gives back p_n places it holds (spare, or its grant left over
-- from an earlier run): never more than its grant says.
CREATE OR REPLACE PROCEDURE bltcy_place_return(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_scope char(1) CHARSET utf8mb4,
  IN p_id bigint, IN p_key varchar(16) CHARSET utf8mb4, IN p_n int,
  IN p_now bigint)
BEGIN
  DECLARE v_n int DEFAULT 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  SELECT n INTO v_n FROM bltcy_place_grants
    WHERE host = p_host AND scope = p_scope AND id = p_id AND key_hash = p_key
    FOR UPDATE;
  SET v_n = GREATEST(LEAST(IFNULL(v_n, 0), p_n), 0);
  UPDATE bltcy_places SET granted = GREATEST(granted - v_n, 0),
      updated_at = p_now
    WHERE scope = p_scope AND id = p_id AND key_hash = p_key;
  UPDATE bltcy_place_grants SET n = n - v_n
    WHERE host = p_host AND scope = p_scope AND id = p_id AND key_hash = p_key;
  COMMIT;
END;

-- At a host's start: what an earlier run of it held goes back (the tasks
-- it had not written yet were lost with it).
CREATE OR REPLACE PROCEDURE bltcy_place_reconcile(
  IN p_host varchar(64) CHARSET utf8mb4, IN p_now bigint)
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  UPDATE bltcy_places p JOIN bltcy_place_grants g ON g.host = p_host
      AND g.scope = p.scope AND g.id = p.id AND g.key_hash = p.key_hash
    SET p.granted = GREATEST(p.granted - g.n, 0), p.updated_at = p_now;
  DELETE FROM bltcy_place_grants WHERE host = p_host;
  COMMIT;
END;

-- As in 004, with the key the submit went with and the places its first
-- task holds, taken from p_host's grant in the same transaction.
CREATE OR REPLACE PROCEDURE bltcy_tasks_add_places(
  IN p_service varchar(32) CHARSET utf8mb4, IN p_tasks text CHARSET utf8mb4,
  IN p_channel bigint, IN p_user bigint, IN p_token bigint, IN p_now bigint,
  IN p_key varchar(16) CHARSET utf8mb4, IN p_places int,
  IN p_host varchar(64) CHARSET utf8mb4)
BEGIN
  DECLARE v_rest text CHARSET utf8mb4 DEFAULT p_tasks;
  DECLARE v_id varchar(191) CHARSET utf8mb4;
  DECLARE v_places int DEFAULT p_places;
  DECLARE v_open int DEFAULT 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  WHILE v_rest IS NOT NULL AND v_rest <> '' DO
    SET v_id = SUBSTRING_INDEX(v_rest, ',', 1);
    SET v_rest = IF(LOCATE(',', v_rest) > 0,
                    SUBSTRING(v_rest, LOCATE(',', v_rest) + 1), '');
    IF v_id <> '' THEN
      INSERT IGNORE INTO bltcy_tasks (service, task_id, channel_id, user_id,
          token_id, created_at, key_hash, places, updated_at)
        VALUES (p_service, v_id, p_channel, p_user, p_token, p_now, p_key,
                v_places, p_now);
      IF v_places <> 0 THEN
        SET v_open = ROW_COUNT();	-- 0: the id was there, holds none
      END IF;
      SET v_places = 0;
    END IF;
  END WHILE;
  IF p_places & 1 THEN
    UPDATE bltcy_places p JOIN bltcy_place_grants g ON g.host = p_host
        AND g.scope = p.scope AND g.id = p.id AND g.key_hash = p.key_hash
      SET p.granted = GREATEST(p.granted - 1, 0), p.open = p.open + v_open,
          g.n = g.n - 1
      WHERE p.scope = 't' AND p.id = p_token AND p.key_hash = '';
  END IF;
  IF p_places & 2 THEN
    UPDATE bltcy_places p JOIN bltcy_place_grants g ON g.host = p_host
        AND g.scope = p.scope AND g.id = p.id AND g.key_hash = p.key_hash
      SET p.granted = GREATEST(p.granted - 1, 0), p.open = p.open + v_open,
          g.n = g.n - 1
      WHERE p.scope = 'u' AND p.id = p_user AND p.key_hash = '';
  END IF;
  IF p_places & 4 THEN
    UPDATE bltcy_places p JOIN bltcy_place_grants g ON g.host = p_host
        AND g.scope = p.scope AND g.id = p.id AND g.key_hash = p.key_hash
      SET p.granted = GREATEST(p.granted - 1, 0), p.open = p.open + v_open,
          g.n = g.n - 1
      WHERE p.scope = 'k' AND p.id = p_channel AND p.key_hash = p_key;
  END IF;
  COMMIT;
END;
