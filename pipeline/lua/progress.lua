-- KEYS: job hash, its events channel
-- ARGV: stage, run, stage progress, overall progress, detail ('' keeps it), now,
--       error of a failed attempt ('' = none)
local state = job_state(ARGV[2])
if state ~= 'ok' then return state end
local s = ARGV[1]
if redis.call('HGET', KEYS[1], s .. '.status') ~= 'running' then return 'stale' end
raise_field(s .. '.progress', ARGV[3])
raise_field('progress', ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'stage_detail', ARGV[5], s .. '.detail', ARGV[5])
end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], s .. '.error', ARGV[7]) end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[6])
redis.call('PUBLISH', KEYS[2], 'progress')
return 'ok'
