-- KEYS: job hash, first stage's stream, jobs index, idempotency key, set of owners,
--       expiry index
-- ARGV: job id, ttl seconds, created (microseconds), use idempotency ('1'/'0'), run, the
--       first stage's consumer group, most jobs that may wait for it, field, value, ...
-- Returns {1, job id}; {0, existing job id} for a used idempotency key; {2, jobs waiting}
-- when the queue is full.

if ARGV[4] == '1' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {0, existing} end
end
local limit = tonumber(ARGV[7])
local queued = waiting(KEYS[2], ARGV[6], limit)
if queued >= limit then return {2, queued} end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[2])
end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
expire_job(KEYS[6], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'job_id', ARGV[1], 'run', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
set_status(KEYS[3], 'queued')
index_owner(KEYS[3], KEYS[5])
return {1, ARGV[1]}
