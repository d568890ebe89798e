-- Shared prelude of the scripts (prepended to each by pipeline/store.py): the job.
-- KEYS[1] is the job hash. Returns 'ok', or why the job must not be touched:
-- 'gone' (deleted or expired), 'terminal' (completed, failed or cancelled),
-- 'stale' (a newer run of the job superseded the message's run).
local function job_state(run)
  if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
  local h = redis.call('HMGET', KEYS[1], 'status', 'run')
  if h[1] == 'completed' or h[1] == 'failed' or h[1] == 'cancelled' then return 'terminal' end
  if run ~= nil and h[2] ~= run then return 'stale' end
  return 'ok'
end

-- Progress never moves backwards: keep the larger of the stored and the new value.
local function raise_field(field, value)
  local current = tonumber(redis.call('HGET', KEYS[1], field) or '0') or 0
  if tonumber(value) > current then redis.call('HSET', KEYS[1], field, value) end
end

local function owns(stream, group, consumer, id)
  local p = redis.call('XPENDING', stream, group, id, id, 1, consumer)
  return #p > 0
end
