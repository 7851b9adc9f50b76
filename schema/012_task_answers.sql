-- Tasks: ids compared exactly and found whatever service names them, the
-- answers that say an upstream does not know a task, and failures a
-- client saw before its task was recorded.

-- A task id is the upstream's, byte for byte: 'abc' is not 'ABC'. The
-- index on task_id alone finds an id in every service: a task belongs to
-- its user whatever path names it. lost counts the relay's own polls in
-- a row that were answered with one of the kind's lost values (below);
-- lost_poll is the poll (polls) counted last, so that a statement run
-- twice counts once.
ALTER TABLE bltcy_tasks
  MODIFY task_id varchar(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  ADD COLUMN IF NOT EXISTS lost int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS lost_poll int NOT NULL DEFAULT -1,
  ADD KEY IF NOT EXISTS idx_bltcy_tasks_task_id (task_id);

-- id_path: where a poll answer names the task it is about (a dotted path,
-- as status_path). An answer is booked only against the task whose id is
-- there; '' when the service's answers name no task, and then the id at
-- the place of {id} in poll_path (the last path segment, or the query
-- key before ={id}) of the client's poll is taken.
-- lost: status values saying that the upstream does not know the task
-- (not found, expired). A client's poll never fails a task for one (the
-- client chose what to ask, and with which ids); the relay's own poll,
-- with the task's key, fails it after 3 such answers in a row.
ALTER TABLE bltcy_task_kinds
  ADD COLUMN IF NOT EXISTS id_path varchar(128) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS lost varchar(255) NOT NULL DEFAULT '';

UPDATE bltcy_task_kinds SET id_path = 'data.task_id'
  WHERE service = 'kling' AND status_path = 'data.task_status' AND id_path = '';
UPDATE bltcy_task_kinds SET id_path = 'data.task_id'
  WHERE service = 'suno' AND status_path = 'data.status' AND id_path = '';
UPDATE bltcy_task_kinds SET id_path = 'id'
  WHERE service IN ('runway', 'pika') AND status_path = 'status' AND id_path = '';
UPDATE bltcy_task_kinds SET failed = 'failed', lost = 'not_found,expired'
  WHERE service = 'jimeng' AND failed = 'not_found,expired,failed' AND lost = '';

-- A failure a client's poll saw before the task's row was written (the
-- usage writer writes it moments after the submit's answer). The task
-- poller applies it once the row is there, about once a second, so the
-- refund comes within seconds and, as every refund, once. A row whose
-- task never came is dropped after a day.
CREATE TABLE IF NOT EXISTS bltcy_task_early (
  service varchar(32) NOT NULL,
  task_id varchar(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  user_id bigint NOT NULL,
  channel_id bigint NOT NULL,
  reason varchar(255) NOT NULL DEFAULT '',
  created_at bigint NOT NULL,
  PRIMARY KEY (service, task_id),
  KEY idx_bltcy_task_early_created_at (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- As in 010, and an answer that says how the task stands ends a run of
-- lost answers.
CREATE OR REPLACE PROCEDURE bltcy_task_seen(
  IN p_service varchar(32) CHARSET utf8mb4,
  IN p_task varchar(191) CHARSET utf8mb4 COLLATE utf8mb4_bin,
  IN p_state varchar(16) CHARSET utf8mb4,
  IN p_reason varchar(255) CHARSET utf8mb4, IN p_now bigint,
  IN p_next_poll bigint)
BEGIN
  UPDATE bltcy_tasks SET state = p_state,
      reason = IF(p_state IN ('failed', 'timeout'), LEFT(p_reason, 255), reason),
      updated_at = p_now, next_poll = p_next_poll, lost = 0,
      finished_at = IF(p_state IN ('succeeded', 'failed', 'timeout'), p_now,
                       finished_at)
    WHERE service = p_service AND task_id = p_task
      AND state IN ('submitted', 'running');
  IF p_state IN ('failed', 'timeout') THEN
    CALL bltcy_task_refund(p_service, p_task, p_now);
  END IF;
END;

-- The relay's own poll (its claim made it poll number polls) was answered
-- with a lost value: counted once for that poll; at p_limit in a row the
-- task has failed (bltcy_task_seen refunds it).
CREATE OR REPLACE PROCEDURE bltcy_task_lost(
  IN p_service varchar(32) CHARSET utf8mb4,
  IN p_task varchar(191) CHARSET utf8mb4 COLLATE utf8mb4_bin,
  IN p_reason varchar(255) CHARSET utf8mb4, IN p_now bigint,
  IN p_next_poll bigint, IN p_limit int)
BEGIN
  DECLARE v_lost int DEFAULT 0;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_lost = 0;
  UPDATE bltcy_tasks SET lost = lost + 1, lost_poll = polls
    WHERE service = p_service AND task_id = p_task
      AND state IN ('submitted', 'running') AND lost_poll <> polls;
  SELECT lost INTO v_lost FROM bltcy_tasks
    WHERE service = p_service AND task_id = p_task
      AND state IN ('submitted', 'running');
  IF v_lost >= p_limit THEN
    CALL bltcy_task_seen(p_service, p_task, 'failed', p_reason, p_now,
                         p_next_poll);
  END IF;
END;
