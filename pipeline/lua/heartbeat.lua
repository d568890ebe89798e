-- Resets the idle clock of an entry this consumer is working on, so that no other
-- consumer reclaims it. JUSTID: a heartbeat is not a delivery. Returns 0 when the entry
-- is no longer ours (another consumer claimed it while this one stalled).
-- KEYS: stream; ARGV: group, consumer, entry id
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
