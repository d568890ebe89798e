-- Starts a new run of a finished job: replaces the run's fields and queues the first stage
-- of the new run, but only if nobody changed the job since it was read (same run, still
-- finished). A job deleted meanwhile stays deleted.
-- KEYS: job hash, its events channel, the first stage's stream, jobs index, expiry index
-- ARGV: expected run, new run, ttl, seconds the stream is kept after this entry (0: for
--       good), number of fields to delete, those fields..., field, value, ...
local state = job_state(ARGV[1])
if state == 'gone' or state == 'stale' then return state end
if state ~= 'terminal' then return 'running' end
local n = tonumber(ARGV[5])
if n > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 6, 5 + n)) end
set_status(KEYS[4], 'queued')
redis.call('HSET', KEYS[1], unpack(ARGV, 6 + n, #ARGV))
expire_job(KEYS[5], ARGV[3])
redis.call('XADD', KEYS[3], '*', 'job_id', string.match(KEYS[1], '[^:]+$'), 'run', ARGV[2])
keep_stream(KEYS[3], ARGV[4])
redis.call('PUBLISH', KEYS[2], 'rerun')
return 'ok'
