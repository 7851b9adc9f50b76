-- Strict metering with one statement per charge.
--
-- A charge is one multi-table UPDATE, durable before the request is
-- forwarded: the token's and user's quota and usage counters, and this
-- worker's row here, which then names the request. The row is what tells,
-- after a worker died or a connection dropped with a statement in flight,
-- whether that statement was applied: it was if and only if the row names
-- the request. A refund is the same UPDATE the other way, applied only
-- while the row still names the request, so neither ever applies twice.
--
-- The rest of a success (the logs row, the channel's used_quota, the task
-- ids, the token's accessed_time) is written by the master in batches,
-- with bltcy_lease_flush, as lease metering's usage is.
CREATE TABLE IF NOT EXISTS bltcy_slots (
  host varchar(64) NOT NULL,
  slot int NOT NULL,
  req varchar(40) NOT NULL DEFAULT '',
  updated_at bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (host, slot)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Usage records: "x":1 marks one whose token and user counters were
-- written by its strict charge, so only the rest is written here.
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
      s varchar(64) PATH '$.s', rc tinyint PATH '$.rc',
      x tinyint PATH '$.x')) AS j;
  UPDATE bltcy_batch SET x = 0 WHERE x IS NULL;
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
  UPDATE users k JOIN (SELECT u, SUM(q) sq, COUNT(*) n FROM bltcy_batch
                        WHERE x = 0 GROUP BY u) b
      ON k.id = b.u
    SET k.used_quota = k.used_quota + b.sq, k.request_count = k.request_count + b.n;
  UPDATE channels k JOIN (SELECT c, SUM(q) sq FROM bltcy_batch GROUP BY c) b
      ON k.id = b.c
    SET k.used_quota = k.used_quota + b.sq;
  UPDATE bltcy_leases k JOIN (SELECT t, SUM(q) sq FROM bltcy_batch
                               WHERE x = 0 GROUP BY t) b
      ON k.host = p_host AND k.token_id = b.t
    SET k.amount = k.amount - b.sq;
  DELETE FROM bltcy_leases WHERE host = p_host AND amount <= 0;
  -- the token rows last: every charge waits for their locks
  UPDATE tokens k JOIN (SELECT t, SUM(IF(x, 0, q)) sq, MAX(ts) mts
                          FROM bltcy_batch GROUP BY t) b
      ON k.id = b.t
    SET k.used_quota = k.used_quota + b.sq,
        k.accessed_time = GREATEST(IFNULL(k.accessed_time, 0), b.mts);
  DROP TEMPORARY TABLE bltcy_batch;
  END IF;
  COMMIT;
END;
