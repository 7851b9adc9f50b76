-- Whether a strict charge applied, told by a row the whole cluster agrees on.
--
-- A charge whose outcome is unknown (its commit's reply was lost, or the
-- process that made it died) is decided by fencing its slot row: the row
-- is made to name the request, marked fenced, unless it names it already
-- (the charge applied). A charge applies only while the row does not name
-- its request, so once the fence is committed the charge can no longer
-- apply, on this server or, through Galera's certification, on any node
-- of the cluster; a refund applies only to a row that names the request
-- and is not fenced. The next charge in the slot clears the mark.
ALTER TABLE bltcy_slots ADD COLUMN IF NOT EXISTS
  fenced tinyint NOT NULL DEFAULT 0;
