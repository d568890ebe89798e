-- KEYS: job hash, its events channel, jobs index
-- ARGV: stage, run, worker, now, job status, detail
local state = job_state(ARGV[2])
if state ~= 'ok' then return state end
local s = ARGV[1]
if redis.call('HGET', KEYS[1], s .. '.status') == 'done' then return 'done' end
redis.call('HSETNX', KEYS[1], s .. '.started_at', ARGV[4])
set_status(KEYS[3], ARGV[5])
redis.call('HSET', KEYS[1], s .. '.status', 'running', s .. '.worker', ARGV[3],
  'stage_detail', ARGV[6], 'updated_at', ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[5])
return 'ok'
