-- KEYS: job hash, its events channel
-- A: stage, run, progress (the stage's), overall (the job's), now; detail (absent: keep
--    it), error (of a failed attempt)
local state = job_state(A.run)
if state ~= 'ok' then return state end
local s = A.stage
if redis.call('HGET', KEYS[1], s .. '.status') ~= STAGE.running then return 'stale' end
raise_field(s .. '.progress', A.progress)
raise_field('progress', A.overall)
if A.detail then
  redis.call('HSET', KEYS[1], 'stage_detail', A.detail, s .. '.detail', A.detail)
end
if A.error then redis.call('HSET', KEYS[1], s .. '.error', A.error) end
redis.call('HSET', KEYS[1], 'updated_at', A.now)
redis.call('PUBLISH', KEYS[2], 'progress')
return 'ok'
