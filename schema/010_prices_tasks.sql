-- Prices by request fields, the task lifecycle and idempotent submits.

-- Price rules: for a request to `service` (and, where model is not '',
-- that model), a body field with the value given multiplies the base
-- price and adds a surcharge (quota units). A rule with field '' applies
-- to every request of its service and model. For one field, rules naming
-- the request's model win over those for any model ('').
CREATE TABLE IF NOT EXISTS bltcy_price_rules (
  id bigint NOT NULL AUTO_INCREMENT,
  service varchar(32) NOT NULL,
  model varchar(64) NOT NULL DEFAULT '',
  field varchar(64) NOT NULL DEFAULT '',
  value varchar(64) NOT NULL DEFAULT '',
  multiplier decimal(12,4) NOT NULL DEFAULT 1,
  surcharge bigint NOT NULL DEFAULT 0,
  note varchar(255) NOT NULL DEFAULT '',
  PRIMARY KEY (id),
  UNIQUE KEY uk_bltcy_price_rules (service, model, field, value)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Where each service's poll answer says how a task stands. status_path
-- and reason_path are dotted JSON paths; succeeded and failed are
-- comma-separated values (compared without case); any other value means
-- running. poll_path is how the relay asks itself for a task nobody
-- polls: {prefix} is the first segment of the submit's path (/kling),
-- {path} the submit's whole path, {id} the task id. An operator adds a
-- service with one row.
CREATE TABLE IF NOT EXISTS bltcy_task_kinds (
  service varchar(32) NOT NULL,
  status_path varchar(128) NOT NULL,
  succeeded varchar(255) NOT NULL,
  failed varchar(255) NOT NULL,
  reason_path varchar(128) NOT NULL DEFAULT '',
  poll_path varchar(255) NOT NULL DEFAULT '',
  PRIMARY KEY (service)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT IGNORE INTO bltcy_task_kinds
    (service, status_path, succeeded, failed, reason_path, poll_path) VALUES
  ('kling', 'data.task_status', 'succeed', 'failed', 'data.task_status_msg',
   '{path}/{id}'),
  ('runway', 'status', 'SUCCEEDED', 'FAILED,CANCELLED', 'failure',
   '{prefix}/v1/tasks/{id}'),
  ('suno', 'data.status', 'SUCCESS', 'FAILURE', 'data.fail_reason',
   '{prefix}/fetch/{id}'),
  ('pika', 'status', 'finished,succeeded,success', 'failed,error', 'error',
   '{prefix}/generate/{id}'),
  ('jimeng', 'data.status', 'done', 'not_found,expired,failed', 'message',
   '{path}?task_id={id}');

-- What the relay routes and prices on changes the same counter as the
-- channels do, so a price edit (ours, new-api's admin, plain SQL) is seen
-- on the next request.
CREATE OR REPLACE TRIGGER bltcy_price_rules_ai AFTER INSERT ON bltcy_price_rules
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
CREATE OR REPLACE TRIGGER bltcy_price_rules_au AFTER UPDATE ON bltcy_price_rules
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
CREATE OR REPLACE TRIGGER bltcy_price_rules_ad AFTER DELETE ON bltcy_price_rules
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
CREATE OR REPLACE TRIGGER bltcy_task_kinds_ai AFTER INSERT ON bltcy_task_kinds
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
CREATE OR REPLACE TRIGGER bltcy_task_kinds_au AFTER UPDATE ON bltcy_task_kinds
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
CREATE OR REPLACE TRIGGER bltcy_task_kinds_ad AFTER DELETE ON bltcy_task_kinds
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
-- new-api's price options
CREATE OR REPLACE TRIGGER bltcy_options_ai AFTER INSERT ON options
FOR EACH ROW
  IF NEW.`key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit') THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
  END IF;
CREATE OR REPLACE TRIGGER bltcy_options_au AFTER UPDATE ON options
FOR EACH ROW
  IF (OLD.`key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit') OR
      NEW.`key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit'))
     AND NOT (OLD.value <=> NEW.value AND OLD.`key` <=> NEW.`key`) THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
  END IF;
CREATE OR REPLACE TRIGGER bltcy_options_ad AFTER DELETE ON options
FOR EACH ROW
  IF OLD.`key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit') THEN
    UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
  END IF;

-- A task is a job: what it was charged, the logs row of its submit (by
-- request id), and how it stands: submitted, running, succeeded, failed,
-- timeout, refunded. next_poll is when the relay asks for it itself
-- unless a client's poll tells it first.
ALTER TABLE bltcy_tasks
  ADD COLUMN IF NOT EXISTS request_id varchar(40) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS model varchar(64) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS path varchar(160) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS key_hash varchar(16) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS quota bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS state varchar(16) NOT NULL DEFAULT 'submitted',
  ADD COLUMN IF NOT EXISTS reason varchar(255) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS updated_at bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS next_poll bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS polls int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS finished_at bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS refunded_quota bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS refunded_at bigint NOT NULL DEFAULT 0,
  ADD KEY IF NOT EXISTS idx_bltcy_tasks_due (state, next_poll),
  ADD KEY IF NOT EXISTS idx_bltcy_tasks_open (state, created_at),
  ADD KEY IF NOT EXISTS idx_bltcy_tasks_user (user_id, created_at);

-- The refund of a failed or timed-out task, exactly once: the task row is
-- locked and moves to 'refunded' in the one transaction that gives its
-- quota back to the token and the user, takes it off their used counters
-- and the channel's, and writes new-api's refund row (type 6). Another
-- caller, on this host or another, waits for the lock and finds it done;
-- a crash anywhere leaves all of it or none.
CREATE OR REPLACE PROCEDURE bltcy_task_refund(
  IN p_service varchar(32) CHARSET utf8mb4,
  IN p_task varchar(191) CHARSET utf8mb4, IN p_now bigint)
BEGIN
  DECLARE v_state varchar(16) CHARSET utf8mb4 DEFAULT NULL;
  DECLARE v_q, v_user, v_token, v_ch bigint DEFAULT 0;
  DECLARE v_rid varchar(40) CHARSET utf8mb4 DEFAULT '';
  DECLARE v_reason varchar(255) CHARSET utf8mb4 DEFAULT '';
  DECLARE v_model varchar(64) CHARSET utf8mb4 DEFAULT '';
  DECLARE v_uname, v_tname varchar(191) CHARSET utf8mb4 DEFAULT '';
  DECLARE v_group varchar(191) CHARSET utf8mb4 DEFAULT '';
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  SELECT state, quota, user_id, token_id, channel_id, request_id, reason, model
    INTO v_state, v_q, v_user, v_token, v_ch, v_rid, v_reason, v_model
    FROM bltcy_tasks WHERE service = p_service AND task_id = p_task FOR UPDATE;
  IF v_state IN ('failed', 'timeout') AND v_q > 0 THEN
    -- in the usage writer's order (user, channel, token last), so that
    -- the two never wait for each other's rows
    UPDATE users SET quota = quota + v_q, used_quota = used_quota - v_q
      WHERE id = v_user;
    UPDATE channels SET used_quota = used_quota - v_q WHERE id = v_ch;
    UPDATE tokens SET remain_quota = remain_quota + IF(unlimited_quota, 0, v_q),
        used_quota = used_quota - v_q WHERE id = v_token;
    SELECT IFNULL(MAX(username), '') INTO v_uname FROM users WHERE id = v_user;
    SELECT IFNULL(MAX(name), ''), IFNULL(MAX(`group`), '') INTO v_tname, v_group
      FROM tokens WHERE id = v_token;
    INSERT INTO logs (user_id, created_at, type, content, username, token_name,
        model_name, quota, channel_id, token_id, `group`, ip, other)
      VALUES (v_user, p_now, 6,
        CONCAT(IF(v_state = 'timeout', '任务超时，退还配额: ', '任务失败，退还配额: '),
               v_q, '（', p_service, ' 任务 ', p_task,
               IF(v_reason <> '', CONCAT('：', v_reason), ''), '）'),
        v_uname, v_tname, CONCAT(p_service, '_passthrough'), v_q, v_ch, v_token,
        v_group, '',
        JSON_OBJECT('task_id', p_task, 'service', p_service,
                    'request_id', v_rid, 'state', v_state,
                    'reason', v_reason));
    UPDATE bltcy_tasks SET state = 'refunded', refunded_quota = v_q,
        refunded_at = p_now, updated_at = p_now
      WHERE service = p_service AND task_id = p_task;
  END IF;
  COMMIT;
END;

-- A poll answer (a client's, or the relay's own) said how a task stands.
-- An unfinished task takes the new state; a failed or timed-out one is
-- refunded (bltcy_task_refund). The state change commits first, so a task
-- that failed is known to have even if its refund has to wait (the relay's
-- sweep does it then).
CREATE OR REPLACE PROCEDURE bltcy_task_seen(
  IN p_service varchar(32) CHARSET utf8mb4,
  IN p_task varchar(191) CHARSET utf8mb4,
  IN p_state varchar(16) CHARSET utf8mb4,
  IN p_reason varchar(255) CHARSET utf8mb4, IN p_now bigint,
  IN p_next_poll bigint)
BEGIN
  UPDATE bltcy_tasks SET state = p_state,
      reason = IF(p_state IN ('failed', 'timeout'), LEFT(p_reason, 255), reason),
      updated_at = p_now, next_poll = p_next_poll,
      finished_at = IF(p_state IN ('succeeded', 'failed', 'timeout'), p_now,
                       finished_at)
    WHERE service = p_service AND task_id = p_task
      AND state IN ('submitted', 'running');
  IF p_state IN ('failed', 'timeout') THEN
    CALL bltcy_task_refund(p_service, p_task, p_now);
  END IF;
END;

-- Idempotent submits: one row per (token, Idempotency-Key) for 24 hours.
-- state 0: the first request is in flight (owner names it); 1: its answer
-- is kept (status, the relayed header lines, the body; complete = 0 when
-- the body was over the cap and only its status is known).
CREATE TABLE IF NOT EXISTS bltcy_idempotency (
  token_id bigint NOT NULL,
  idem_key varchar(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  body_hash char(64) CHARACTER SET ascii NOT NULL,
  state tinyint NOT NULL DEFAULT 0,
  owner varchar(96) NOT NULL DEFAULT '',
  created_at bigint NOT NULL,
  status int NOT NULL DEFAULT 0,
  headers text,
  body mediumblob,
  complete tinyint NOT NULL DEFAULT 1,
  PRIMARY KEY (token_id, idem_key),
  KEY idx_bltcy_idempotency_created_at (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
