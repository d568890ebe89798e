-- Sets a failed entry aside for its next attempt, all or nothing: notes on the job why the
-- attempt failed, adds the entry's message with its count of attempts to the stage's retry
-- set, due delay seconds from now (on the server's clock), and acknowledges the entry. So
-- the wait belongs to the job, not to the worker, which goes on with other entries. A job
-- gone, finished or superseded meanwhile is only acknowledged.
-- KEYS: job hash, its events channel, this stage's stream, its retry set
-- A: group, consumer, entry_id, stage, run, job_id, attempts (so far, this one included),
--    delay (seconds), keep (seconds the retry set is kept, 0: for good), now, error, detail
if not owns(KEYS[3], A.group, A.consumer, A.entry_id) then return 'lost' end
local state = job_state(A.run)
if state == 'ok' then
  local s = A.stage
  redis.call('HSET', KEYS[1], s .. '.error', A.error, s .. '.detail', A.detail,
    'stage_detail', A.detail, 'updated_at', A.now)
  local t = redis.call('TIME')
  local due = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(A.delay)
  redis.call('ZADD', KEYS[4], due,
    cjson.encode({job_id = A.job_id, run = A.run, attempts = A.attempts}))
  keep_stream(KEYS[4], A.keep)
  redis.call('PUBLISH', KEYS[2], 'retrying')
end
redis.call('XACK', KEYS[3], A.group, A.entry_id)
return state
