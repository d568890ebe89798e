-- Removes a consumer from its group only while it has no pending entries: deleting a
-- consumer drops its pending entries, so they must all have been reclaimed first.
-- KEYS: stream; A: group, consumer
if #redis.call('XPENDING', KEYS[1], A.group, '-', '+', 1, A.consumer) > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], A.group, A.consumer) >= 0 and 1 or 0
