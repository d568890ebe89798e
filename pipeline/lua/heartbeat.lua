-- Resets the idle clock of an entry this consumer is working on, so that no other
-- consumer reclaims it. JUSTID: a heartbeat is not a delivery. Returns 0 when the entry
-- is no longer ours (another consumer claimed it while this one stalled).
-- KEYS: stream; A: group, consumer, entry_id
if not owns(KEYS[1], A.group, A.consumer, A.entry_id) then return 0 end
redis.call('XCLAIM', KEYS[1], A.group, A.consumer, 0, A.entry_id, 'JUSTID')
return 1
