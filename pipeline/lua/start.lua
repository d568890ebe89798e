-- KEYS: job hash, its events channel, jobs index, the status indexes
-- A: stage, run, worker, now, status (the job's while the stage runs), detail,
--    status_keys
local state = job_state(A.run)
if state ~= 'ok' then return state end
local s = A.stage
if redis.call('HGET', KEYS[1], s .. '.status') == STAGE.done then return 'done' end
redis.call('HSETNX', KEYS[1], s .. '.started_at', A.now)
set_status(KEYS[3], A.status)
redis.call('HSET', KEYS[1], s .. '.status', STAGE.running, s .. '.worker', A.worker,
  'stage_detail', A.detail, 'updated_at', A.now)
redis.call('PUBLISH', KEYS[2], A.status)
return 'ok'
