-- bltcy_charges and its routines are gone: strict metering charges with
-- one statement under the thread's bltcy_slots row (006), and no version
-- since writes bltcy_charges. What an older version left open there is
-- settled here, once, as its bltcy_charge_recover did: such a charge
-- stands; its logs row, if the charge never finished, says "recovered";
-- its quota moves onto the channel's used_quota. Then the table and its
-- seven routines are dropped.
CREATE TABLE IF NOT EXISTS bltcy_charges (
  request_id varchar(40) NOT NULL,
  channel_id bigint NOT NULL,
  quota bigint NOT NULL,
  logs_id bigint NOT NULL DEFAULT 0,
  done tinyint(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

START TRANSACTION;

UPDATE logs l JOIN bltcy_charges c ON l.id = c.logs_id
   SET l.other = CONCAT('{"request_id":"', c.request_id, '","recovered":true}')
 WHERE c.logs_id <> 0 AND c.done = 0;

UPDATE channels ch JOIN (SELECT channel_id, SUM(quota) sq FROM bltcy_charges
                          WHERE logs_id <> 0 GROUP BY channel_id) s
    ON ch.id = s.channel_id
   SET ch.used_quota = ch.used_quota + s.sq;

DELETE FROM bltcy_charges WHERE logs_id <> 0;

COMMIT;

DROP TABLE IF EXISTS bltcy_charges;
DROP PROCEDURE IF EXISTS bltcy_charge;
DROP PROCEDURE IF EXISTS bltcy_charge_done;
DROP PROCEDURE IF EXISTS bltcy_charge_close;
DROP PROCEDURE IF EXISTS bltcy_charge_refund;
DROP PROCEDURE IF EXISTS bltcy_charge_recover;
DROP PROCEDURE IF EXISTS bltcy_recover;
DROP PROCEDURE IF EXISTS bltcy_recover_stale;
