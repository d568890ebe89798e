-- Starts a new run of a finished job: replaces the run's fields and queues the first stage
-- of the new run, but only if nobody changed the job since it was read (same run, still
-- finished). A job deleted meanwhile stays deleted.
-- KEYS: job hash, its events channel, the first stage's stream, jobs index, expiry index,
--       the status indexes
-- A: job_id, expected_run, run (the new one), ttl, keep (seconds the stream is kept after
--    this entry, 0: for good), stale (fields to delete), fields (to set), status_keys
local state = job_state(A.expected_run)
if state == 'gone' or state == 'stale' then return state end
if state ~= 'terminal' then return 'running' end
if #A.stale > 0 then redis.call('HDEL', KEYS[1], unpack(A.stale)) end
set_status(KEYS[4], STATUS.queued)
local fields = {}
for field, value in pairs(A.fields) do
  fields[#fields + 1] = field
  fields[#fields + 1] = value
end
redis.call('HSET', KEYS[1], unpack(fields))
expire_job(KEYS[5], A.ttl)
redis.call('XADD', KEYS[3], '*', 'job_id', A.job_id, 'run', A.run)
keep_stream(KEYS[3], A.keep)
redis.call('PUBLISH', KEYS[2], 'rerun')
return 'ok'
