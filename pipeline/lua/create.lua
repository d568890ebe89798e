-- KEYS: job hash, first stage's stream, jobs index, idempotency key, set of owners,
--       expiry index, the status indexes, and the owner's index if it has one
-- A: job_id, ttl (seconds), created (microseconds), idempotent (use the idempotency key),
--    fingerprint (of the request the key makes a job of), run, group (the first stage's
--    consumer group), limit (most jobs that may wait for it), fields (of the job's hash),
--    status_keys, owner_key
-- Returns {1, job id}; {0, existing job id} for a used idempotency key; {3, existing job
-- id} for a used one whose job was made from a request with another fingerprint; {2, jobs
-- waiting} when the queue is full.

if A.idempotent then
  -- "job id fingerprint"; a key stored by an earlier version holds the job id alone.
  local existing = redis.call('GET', KEYS[4])
  if existing then
    local id, fingerprint = string.match(existing, '^(%S+) ?(.*)$')
    if fingerprint ~= '' and fingerprint ~= A.fingerprint then return {3, id} end
    return {0, id}
  end
end
local queued = waiting(KEYS[2], A.group, A.limit)
if queued >= A.limit then return {2, queued} end
if A.idempotent then
  redis.call('SET', KEYS[4], A.job_id .. ' ' .. A.fingerprint, 'EX', A.ttl)
end
local fields = {}
for field, value in pairs(A.fields) do
  fields[#fields + 1] = field
  fields[#fields + 1] = value
end
redis.call('HSET', KEYS[1], unpack(fields))
expire_job(KEYS[6], A.ttl)
redis.call('XADD', KEYS[2], '*', 'job_id', A.job_id, 'run', A.run)
redis.call('ZADD', KEYS[3], A.created, A.job_id)
set_status(KEYS[3], STATUS.queued)
index_owner(KEYS[3], KEYS[5])
return {1, A.job_id}
