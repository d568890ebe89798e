-- KEYS: job hash, first stage's stream, jobs index, idempotency key
-- ARGV: job id, ttl seconds, created (microseconds), index entries older than this are
--       expired, use idempotency ('1'/'0'), run, field, value, ...
if ARGV[5] == '1' then
  if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'EX', ARGV[2]) then
    return {0, redis.call('GET', KEYS[4])}
  end
end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'job_id', ARGV[1], 'run', ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
-- Index entries of expired jobs are dropped here, so the index stays bounded.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4])
return {1, ARGV[1]}
